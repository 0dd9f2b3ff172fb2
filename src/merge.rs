//! `preflight merge`: many nodes' JSON reports as one matrix (endpoints down the side, nodes
//! across), and what its pattern says. An endpoint that fails on every node that checked it
//! points at the endpoint or the path all nodes share; one that fails on some nodes only points
//! at those nodes' own path.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::InputError;
use crate::report::Status;

/// The fields of a report (schema 1) that a merge keeps. A `--watch` log's round lines and the
/// body of `serve`'s /healthz are reports too.
#[derive(Debug)]
struct Input {
    started_at: String,
    /// Absent from reports of versions before 0.2.
    node: String,
    source_addresses: Vec<IpAddr>,
    checks: Vec<InputCheck>,
}

#[derive(Debug, Deserialize)]
struct InputCheck {
    id: String,
    name: String,
    target: String,
    required: bool,
    status: Status,
    error: Option<InputFailure>,
}

/// A failure as a report says it: its kind, message and hint, as text a user may not have written.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct InputFailure {
    /// The failure kind's identifier.
    pub kind: String,
    /// What happened.
    pub message: String,
    /// What to do.
    pub hint: String,
}

/// One node's report, as the fleet's matrix names it.
#[derive(Debug, Serialize)]
pub struct Node {
    /// The report's `node`; its file name when the report has none; `#2` … after a name
    /// another report already has.
    pub node: String,
    /// The file the report was read from.
    pub file: PathBuf,
    /// When that node's run started.
    pub started_at: String,
    /// The addresses that node's connections left from.
    pub source_addresses: Vec<IpAddr>,
}

/// What one node said of one endpoint; `status` is null when its report has no such check.
#[derive(Debug, Serialize)]
pub struct Cell {
    /// The status the node reported; `None` when its report has no such check.
    pub status: Option<Status>,
    /// The node's failure, when it failed or warned.
    pub error: Option<InputFailure>,
}

/// What the failures of one endpoint across the nodes point at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pattern {
    /// No node failed it.
    None,
    /// Every node that checked it (two or more) failed: the endpoint, or the path all nodes
    /// share.
    Everywhere,
    /// Some nodes failed it and others reached it: those nodes' own path.
    SomeNodes,
    /// Only one node checked it, and that node failed it: one node cannot tell the two apart.
    OneNode,
}

/// One endpoint across the fleet.
#[derive(Debug, Serialize)]
pub struct Row {
    /// The endpoint's id.
    pub id: String,
    /// A person's name for it.
    pub name: String,
    /// The target checked.
    pub target: String,
    /// Whether any node called it required.
    pub required: bool,
    /// One cell per node, in the order of `nodes`.
    pub cells: Vec<Cell>,
    /// What the failures across the nodes point at.
    pub pattern: Pattern,
    /// The nodes that failed it.
    pub failing_on: Vec<String>,
}

/// A node that fails endpoints which every other node that checked them reaches.
#[derive(Debug, Serialize)]
pub struct Alone {
    /// The node, as the matrix names it.
    pub node: String,
    /// The endpoints' ids.
    pub endpoints: Vec<String>,
}

/// The merged reports: the JSON of `merge --format json`.
#[derive(Debug, Serialize)]
pub struct Fleet {
    /// The version of the report shape it is made of.
    pub schema_version: u32,
    /// `preflight`.
    pub tool: &'static str,
    /// preflight's version.
    pub version: &'static str,
    /// The nodes, one per report, in the order given.
    pub nodes: Vec<Node>,
    /// The endpoints, in the order the reports first name them.
    pub endpoints: Vec<Row>,
    /// The nodes failing alone.
    pub alone: Vec<Alone>,
    /// What the reader should know about the merge itself (a name given twice).
    pub notes: Vec<String>,
    /// The endpoints only one node checked, by node (absent when there are none): kept apart
    /// from the matrix, whose rows hold a cell for every node.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub own_endpoints: Vec<OwnEndpoints>,
}

impl Fleet {
    /// Merges reports read from `readers`, each named by its path (fuzzing feeds them from
    /// memory).
    pub fn from_readers<R: std::io::Read>(readers: Vec<(PathBuf, R)>) -> Result<Fleet, InputError> {
        let mut merging = Merging::default();
        for (path, reader) in readers {
            let input = parse(&path, reader)?;
            merging.add(path, input);
        }
        Ok(merging.finish())
    }

    /// Reads every report and merges them, one report in memory at a time.
    pub fn load(paths: &[PathBuf]) -> Result<Fleet, InputError> {
        let mut merging = Merging::default();
        for path in paths {
            let input = read(path)?;
            merging.add(path.clone(), input);
        }
        Ok(merging.finish())
    }

    /// The endpoints with this pattern.
    pub fn with(&self, pattern: Pattern) -> impl Iterator<Item = &Row> {
        self.endpoints.iter().filter(move |r| r.pattern == pattern)
    }

    /// Each endpoint only one node checked, failed, with its node: the `OneNode` pattern of
    /// the per-node lists.
    pub fn own_failing(&self) -> impl Iterator<Item = (&str, &Own)> {
        self.own_endpoints.iter().flat_map(|node| {
            node.endpoints
                .iter()
                .filter(|e| e.pattern == Pattern::OneNode)
                .map(move |e| (node.node.as_str(), e))
        })
    }

    /// 1 when a required endpoint failed on any node, as `check` exits 1 for one node.
    pub fn exit_code(&self) -> u8 {
        let shared = self
            .endpoints
            .iter()
            .any(|r| r.required && !r.failing_on.is_empty());
        let own = self.own_failing().any(|(_, e)| e.required);
        u8::from(shared || own)
    }
}

/// The endpoints that only one node checked (a node's own address, a DaemonSet's own node),
/// kept apart from the matrix: a row for each would hold a cell for every node.
#[derive(Debug, Serialize)]
pub struct OwnEndpoints {
    /// The node, as the matrix names it.
    pub node: String,
    /// Its endpoints that no other node checked, in the order its report gives them.
    pub endpoints: Vec<Own>,
}

/// One endpoint that one node alone checked.
#[derive(Debug, Serialize)]
pub struct Own {
    /// The endpoint's id.
    pub id: String,
    /// A person's name for it.
    pub name: String,
    /// The target checked.
    pub target: String,
    /// Whether the node called it required.
    pub required: bool,
    /// The status the node reported.
    pub status: Status,
    /// The node's failure, when it failed or warned.
    pub error: Option<InputFailure>,
    /// `one_node` when it failed, else `none`.
    pub pattern: Pattern,
}

/// The merge as the reports come, one at a time: the nodes' names, and each endpoint's cells
/// kept sparse (a cell for each node whose report has it), found by (id, target) in a map.
#[derive(Default)]
struct Merging {
    notes: Vec<String>,
    nodes: Vec<Node>,
    /// Every name given so far, and for each name reported twice the next `#k` to try.
    taken: std::collections::HashSet<String>,
    next: std::collections::HashMap<String, usize>,
    rows: Vec<Sparse>,
    index: std::collections::HashMap<(String, String), usize>,
}

/// An endpoint while reports are read: its cells, by node, in node order.
struct Sparse {
    id: String,
    name: String,
    target: String,
    required: bool,
    cells: Vec<(usize, Cell)>,
}

impl Merging {
    fn add(&mut self, file: PathBuf, input: Input) {
        let column = self.nodes.len();
        let node = self.name(&file, &input.node);
        for check in input.checks {
            let key = (check.id, check.target);
            let at = match self.index.get(&key) {
                Some(&at) => at,
                None => {
                    let (id, target) = key;
                    self.rows.push(Sparse {
                        id: id.clone(),
                        name: check.name,
                        target: target.clone(),
                        required: false,
                        cells: Vec::new(),
                    });
                    self.index.insert((id, target), self.rows.len() - 1);
                    self.rows.len() - 1
                }
            };
            let row = &mut self.rows[at];
            row.required |= check.required;
            let cell = Cell {
                status: Some(check.status),
                error: check.error,
            };
            // A report that names a check twice: its last word stands.
            match row.cells.last_mut() {
                Some((last, held)) if *last == column => *held = cell,
                _ => row.cells.push((column, cell)),
            }
        }
        self.nodes.push(Node {
            node,
            file,
            started_at: input.started_at,
            source_addresses: input.source_addresses,
        });
    }

    /// The node's name: the report's, else its file's; `NAME #k` (the first `k` from 2 not
    /// taken) after a name an earlier report has, with a note.
    fn name(&mut self, file: &Path, given: &str) -> String {
        let name = match given.trim() {
            "" => file_stem(file),
            given => given.to_string(),
        };
        if self.taken.insert(name.clone()) {
            return name;
        }
        let next = self.next.entry(name.clone()).or_insert(2);
        let renamed = loop {
            let candidate = format!("{name} #{next}");
            *next += 1;
            if !self.taken.contains(&candidate) {
                break candidate;
            }
        };
        self.taken.insert(renamed.clone());
        self.notes.push(format!(
            "{} names the node {name} as an earlier report does; it is shown as {renamed}",
            file.display()
        ));
        renamed
    }

    fn finish(self) -> Fleet {
        let total = self.nodes.len();
        let mut endpoints = Vec::new();
        let mut own: Vec<Vec<Own>> = (0..total).map(|_| Vec::new()).collect();
        for row in self.rows {
            // With two nodes or more, an endpoint one node alone checked goes to that node's
            // list; a single report's endpoints all stay in the matrix.
            if total > 1 && row.cells.len() == 1 {
                let Some((column, cell)) = row.cells.into_iter().next() else {
                    continue;
                };
                let status = cell.status.unwrap_or(Status::Skipped);
                own[column].push(Own {
                    id: row.id,
                    name: row.name,
                    target: row.target,
                    required: row.required,
                    status,
                    error: cell.error,
                    pattern: match status {
                        Status::Fail => Pattern::OneNode,
                        _ => Pattern::None,
                    },
                });
                continue;
            }
            let mut cells: Vec<Cell> = (0..total)
                .map(|_| Cell {
                    status: None,
                    error: None,
                })
                .collect();
            let mut failing_on = Vec::new();
            for (column, cell) in row.cells {
                if cell.status == Some(Status::Fail) {
                    failing_on.push(column);
                }
                cells[column] = cell;
            }
            let mut row = Row {
                id: row.id,
                name: row.name,
                target: row.target,
                required: row.required,
                cells,
                pattern: Pattern::None,
                failing_on: failing_on
                    .iter()
                    .map(|&c| self.nodes[c].node.clone())
                    .collect(),
            };
            row.pattern = pattern(&row);
            endpoints.push((row, failing_on));
        }
        let alone = alone(&endpoints, &self.nodes);
        let own_endpoints = own
            .into_iter()
            .zip(&self.nodes)
            .filter(|(endpoints, _)| !endpoints.is_empty())
            .map(|(endpoints, node)| OwnEndpoints {
                node: node.node.clone(),
                endpoints,
            })
            .collect();
        Fleet {
            schema_version: crate::report::SCHEMA_VERSION,
            tool: "preflight",
            version: env!("CARGO_PKG_VERSION"),
            nodes: self.nodes,
            endpoints: endpoints.into_iter().map(|(row, _)| row).collect(),
            alone,
            notes: self.notes,
            own_endpoints,
        }
    }
}

/// A JSON document of the file: a report, a `--watch` round line (a report with `round` and
/// `changes` beside it), or a watch's summary line (no `checks`). Fields merge does not keep
/// are skipped as they are read, never held.
#[derive(Debug, Deserialize)]
struct Document {
    schema_version: Option<u32>,
    started_at: Option<String>,
    #[serde(default)]
    node: String,
    #[serde(default)]
    source_addresses: Vec<IpAddr>,
    checks: Option<Vec<InputCheck>>,
}

/// One report, or the last round of a `--watch` log (JSON Lines), read as a stream: memory
/// holds what the matrix keeps of a report (at most two rounds of a log), whatever the size of
/// the file.
fn read(path: &Path) -> Result<Input, InputError> {
    let bad = |reason: String| InputError::File {
        path: path.to_path_buf(),
        reason,
    };
    let file = crate::files::open(crate::files::stdin_or(path))
        .map_err(|e| bad(format!("cannot read the report: {e}")))?;
    parse(path, file)
}

/// A report (or watch log) from `reader`; `path` names it in errors.
fn parse(path: &Path, reader: impl std::io::Read) -> Result<Input, InputError> {
    let bad = |reason: String| InputError::File {
        path: path.to_path_buf(),
        reason,
    };
    let reader = std::io::BufReader::with_capacity(64 * 1024, reader);
    let mut last: Option<Document> = None;
    for document in serde_json::Deserializer::from_reader(reader).into_iter::<Document>() {
        match document {
            Ok(document) if document.checks.is_some() => last = Some(document),
            Ok(_) => {}
            // A log cut short while it was written: its last whole round stands.
            Err(err) if last.is_some() && (err.is_eof() || err.is_syntax()) => break,
            Err(err) => {
                let why = match err.classify() {
                    serde_json::error::Category::Data => err.to_string(),
                    serde_json::error::Category::Io => {
                        format!(
                            "it cannot be read: {}",
                            crate::error::without_os_error(&err.to_string())
                        )
                    }
                    _ => format!(
                        "it is not JSON (line {}, column {})",
                        err.line(),
                        err.column()
                    ),
                };
                return Err(bad(format!(
                    "not a preflight JSON report (`preflight check --format json` writes one): {why}"
                )));
            }
        }
    }
    let not_a_report = |missing: &str| {
        bad(format!(
            "not a preflight JSON report (`preflight check --format json` writes one): missing field `{missing}`"
        ))
    };
    let last = last.ok_or_else(|| not_a_report("checks"))?;
    let schema_version = last
        .schema_version
        .ok_or_else(|| not_a_report("schema_version"))?;
    if schema_version != crate::report::SCHEMA_VERSION {
        return Err(bad(format!(
            "a report of schema version {schema_version}; this preflight reads version {}",
            crate::report::SCHEMA_VERSION
        )));
    }
    Ok(Input {
        started_at: last.started_at.ok_or_else(|| not_a_report("started_at"))?,
        node: last.node,
        source_addresses: last.source_addresses,
        checks: last.checks.unwrap_or_default(),
    })
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Reached (ok or warn), failed, or neither (skipped, or not in the node's report).
fn counts(row: &Row) -> (usize, usize) {
    let of = |wanted: &[Status]| {
        row.cells
            .iter()
            .filter(|c| c.status.is_some_and(|s| wanted.contains(&s)))
            .count()
    };
    (of(&[Status::Ok, Status::Warn]), of(&[Status::Fail]))
}

fn pattern(row: &Row) -> Pattern {
    match counts(row) {
        (_, 0) => Pattern::None,
        (0, 1) => Pattern::OneNode,
        (0, _) => Pattern::Everywhere,
        _ => Pattern::SomeNodes,
    }
}

/// Each node failing endpoints that every other node which checked them reaches, in node
/// order: one pass over the rows (`failing` holds each row's failing nodes by column).
fn alone(rows: &[(Row, Vec<usize>)], nodes: &[Node]) -> Vec<Alone> {
    let mut by_node: Vec<Vec<String>> = (0..nodes.len()).map(|_| Vec::new()).collect();
    for (row, failing) in rows {
        if let ([column], Pattern::SomeNodes) = (failing.as_slice(), row.pattern) {
            by_node[*column].push(row.id.clone());
        }
    }
    by_node
        .into_iter()
        .zip(nodes)
        .filter(|(endpoints, _)| !endpoints.is_empty())
        .map(|(endpoints, node)| Alone {
            node: node.node.clone(),
            endpoints,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(node: &str, checks: &[(&str, Status)]) -> Input {
        Input {
            started_at: "2026-11-26T10:00:00Z".into(),
            node: node.into(),
            source_addresses: Vec::new(),
            checks: checks
                .iter()
                .map(|&(id, status)| InputCheck {
                    id: id.into(),
                    name: id.into(),
                    target: format!("tcp://{id}.example:443"),
                    required: true,
                    status,
                    error: (status == Status::Fail).then(|| InputFailure {
                        kind: "refused".into(),
                        message: "refused".into(),
                        hint: "open it".into(),
                    }),
                })
                .collect(),
        }
    }

    fn fleet(inputs: Vec<Input>) -> Fleet {
        let mut merging = Merging::default();
        for (i, input) in inputs.into_iter().enumerate() {
            merging.add(PathBuf::from(format!("n{i}.json")), input);
        }
        merging.finish()
    }

    #[test]
    fn the_patterns_of_a_fleet() {
        use Status::*;
        let f = fleet(vec![
            input(
                "a",
                &[("cp", Ok), ("api", Fail), ("tel", Ok), ("x", Skipped)],
            ),
            input(
                "b",
                &[("cp", Ok), ("api", Fail), ("tel", Fail), ("x", Skipped)],
            ),
            input(
                "c",
                &[("cp", Warn), ("api", Fail), ("tel", Ok), ("only", Fail)],
            ),
        ]);
        let of = |id: &str| f.endpoints.iter().find(|r| r.id == id).unwrap();
        assert_eq!(of("cp").pattern, Pattern::None);
        assert_eq!(of("api").pattern, Pattern::Everywhere);
        assert_eq!(of("api").failing_on, ["a", "b", "c"]);
        assert_eq!(of("tel").pattern, Pattern::SomeNodes);
        assert_eq!(of("x").pattern, Pattern::None);
        // Checked by one node alone: in that node's list, not a row of the matrix.
        assert!(f.endpoints.iter().all(|r| r.id != "only"));
        let (node, only) = f.own_failing().next().unwrap();
        assert_eq!((node, only.id.as_str()), ("c", "only"));
        assert_eq!(only.pattern, Pattern::OneNode);
        assert_eq!(f.alone.len(), 1);
        assert_eq!(
            (f.alone[0].node.as_str(), &f.alone[0].endpoints[..]),
            ("b", &["tel".to_string()][..])
        );
        assert_eq!(f.exit_code(), 1);
    }

    #[test]
    fn a_node_named_twice_or_not_at_all_gets_a_name_of_its_own() {
        let f = fleet(vec![input("a", &[]), input("a", &[]), input("", &[])]);
        let names: Vec<_> = f.nodes.iter().map(|n| n.node.as_str()).collect();
        assert_eq!(names, ["a", "a #2", "n2"]);
        assert_eq!(f.notes.len(), 1, "{:?}", f.notes);
    }

    #[test]
    fn a_watch_log_gives_its_last_round() {
        let round = |n: u32, status: &str| {
            format!(
                r#"{{"round":{n},"changes":[],"schema_version":1,"started_at":"t{n}","node":"w","checks":[{{"id":"cp","name":"CP","target":"tcp://cp:443","required":true,"status":"{status}","error":null}}]}}"#
            )
        };
        let log = format!(
            "{}\n{}\n{{\"watch_summary\":{{\"rounds\":2,\"endpoints\":[]}}}}\n",
            round(1, "fail"),
            round(2, "ok")
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("watch.jsonl");
        std::fs::write(&path, &log).unwrap();
        let input = read(&path).unwrap();
        assert_eq!(input.started_at, "t2");
        assert_eq!(input.checks[0].status, Status::Ok);
        // Cut short while it was written: the last whole round stands.
        std::fs::write(&path, &log[..log.len() - 20]).unwrap();
        assert_eq!(read(&path).unwrap().started_at, "t2");
    }
}

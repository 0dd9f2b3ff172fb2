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
}

impl Fleet {
    /// Merges reports read from `readers`, each named by its path (fuzzing feeds them from
    /// memory).
    pub fn from_readers<R: std::io::Read>(readers: Vec<(PathBuf, R)>) -> Result<Fleet, InputError> {
        let inputs = readers
            .into_iter()
            .map(|(path, reader)| parse(&path, reader).map(|input| (path, input)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Fleet::of(inputs))
    }

    /// Reads every report and merges them.
    pub fn load(paths: &[PathBuf]) -> Result<Fleet, InputError> {
        let inputs = paths
            .iter()
            .map(|path| read(path).map(|input| (path.clone(), input)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Fleet::of(inputs))
    }

    fn of(inputs: Vec<(PathBuf, Input)>) -> Fleet {
        let mut notes = Vec::new();
        let mut nodes: Vec<Node> = Vec::new();
        for (file, input) in &inputs {
            let mut name = match input.node.trim() {
                "" => file_stem(file),
                given => given.to_string(),
            };
            if nodes.iter().any(|n| n.node == name) {
                let renamed = (2..)
                    .map(|i| format!("{name} #{i}"))
                    .find(|candidate| nodes.iter().all(|n| n.node != *candidate))
                    .unwrap_or_default();
                notes.push(format!(
                    "{} names the node {name} as an earlier report does; it is shown as {renamed}",
                    file.display()
                ));
                name = renamed;
            }
            nodes.push(Node {
                node: name,
                file: file.clone(),
                started_at: input.started_at.clone(),
                source_addresses: input.source_addresses.clone(),
            });
        }
        let mut endpoints = rows(&inputs);
        for row in &mut endpoints {
            row.failing_on = failing(row, &nodes);
            row.pattern = pattern(row);
        }
        let alone = alone(&endpoints, &nodes);
        Fleet {
            schema_version: crate::report::SCHEMA_VERSION,
            tool: "preflight",
            version: env!("CARGO_PKG_VERSION"),
            nodes,
            endpoints,
            alone,
            notes,
        }
    }

    /// The endpoints with this pattern.
    pub fn with(&self, pattern: Pattern) -> impl Iterator<Item = &Row> {
        self.endpoints.iter().filter(move |r| r.pattern == pattern)
    }

    /// 1 when a required endpoint failed on any node, as `check` exits 1 for one node.
    pub fn exit_code(&self) -> u8 {
        u8::from(
            self.endpoints
                .iter()
                .any(|r| r.required && !r.failing_on.is_empty()),
        )
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

/// One row per endpoint (its id and target), in the order the reports first name them.
fn rows(inputs: &[(PathBuf, Input)]) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    // Found through an index, so that a report of 100,000 checks merges in linear time.
    let mut index: std::collections::HashMap<(&str, &str), usize> =
        std::collections::HashMap::new();
    for (column, (_, input)) in inputs.iter().enumerate() {
        for check in &input.checks {
            let at = index
                .get(&(check.id.as_str(), check.target.as_str()))
                .copied();
            let at = at.unwrap_or_else(|| {
                index.insert((check.id.as_str(), check.target.as_str()), rows.len());
                rows.push(Row {
                    id: check.id.clone(),
                    name: check.name.clone(),
                    target: check.target.clone(),
                    required: check.required,
                    cells: (0..inputs.len())
                        .map(|_| Cell {
                            status: None,
                            error: None,
                        })
                        .collect(),
                    pattern: Pattern::None,
                    failing_on: Vec::new(),
                });
                rows.len() - 1
            });
            let row = &mut rows[at];
            row.required |= check.required;
            row.cells[column] = Cell {
                status: Some(check.status),
                error: check.error.clone(),
            };
        }
    }
    rows
}

fn failing(row: &Row, nodes: &[Node]) -> Vec<String> {
    row.cells
        .iter()
        .zip(nodes)
        .filter(|(cell, _)| cell.status == Some(Status::Fail))
        .map(|(_, node)| node.node.clone())
        .collect()
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

/// Each node failing endpoints that every other node which checked them reaches.
fn alone(rows: &[Row], nodes: &[Node]) -> Vec<Alone> {
    nodes
        .iter()
        .filter_map(|node| {
            let endpoints: Vec<String> = rows
                .iter()
                .filter(|r| r.pattern == Pattern::SomeNodes && r.failing_on == [node.node.clone()])
                .map(|r| r.id.clone())
                .collect();
            (!endpoints.is_empty()).then(|| Alone {
                node: node.node.clone(),
                endpoints,
            })
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
        Fleet::of(
            inputs
                .into_iter()
                .enumerate()
                .map(|(i, input)| (PathBuf::from(format!("n{i}.json")), input))
                .collect(),
        )
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
        assert_eq!(of("only").pattern, Pattern::OneNode);
        assert!(of("only").cells[0].status.is_none());
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

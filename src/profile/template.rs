//! Host templates: text with `{variable}` placeholders; `{first|second}` takes the first
//! variable that has a value (kong-hybrid's telemetry host: `{telemetry_host|cp_host}`).

use std::collections::HashMap;

use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    /// The variables tried in turn.
    Var(Vec<String>),
}

/// A parsed host template such as `{cp_prefix}.{region}.cp0.konghq.com`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

impl Template {
    /// Parses a template, refusing an unclosed or empty `{}`.
    pub fn parse(source: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = source;
        while let Some(open) = rest.find(['{', '}']) {
            if rest[open..].starts_with('}') {
                return Err(format!("`{source}` has a `}}` without a `{{`"));
            }
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| format!("`{source}` opens a `{{` it does not close"))?;
            let names: Vec<String> = after[..close].split('|').map(str::to_string).collect();
            for name in &names {
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(format!(
                        "`{source}` has `{{{}}}`: a variable name is letters, digits and _ (alternatives joined by |)",
                        &after[..close]
                    ));
                }
            }
            parts.push(Part::Var(names));
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template {
            source: source.to_string(),
            parts,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The variables it uses, in order.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Var(names) => Some(names.iter().map(String::as_str)),
                Part::Text(_) => None,
            })
            .flatten()
    }

    /// Fills in the variables; `Err` names the first one without a value.
    pub fn render(&self, values: &HashMap<String, String>) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Var(names) => {
                    let value = names.iter().find_map(|name| values.get(name));
                    out.push_str(value.ok_or_else(|| names[0].clone())?);
                }
            }
        }
        Ok(out)
    }
}

impl Template {
    /// Fills in the variables that have a value and leaves the others as `{name}`: how a
    /// skipped endpoint is shown.
    pub fn render_known(&self, values: &HashMap<String, String>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Var(names) => match names.iter().find_map(|name| values.get(name)) {
                    Some(value) => out.push_str(value),
                    None => out.push_str(&format!("{{{}}}", names[0])),
                },
            }
        }
        out
    }
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Template::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_variables() {
        let t = Template::parse("{cp_prefix}.{region}.cp0.konghq.com").unwrap();
        assert_eq!(t.variables().collect::<Vec<_>>(), ["cp_prefix", "region"]);
        let values = HashMap::from([
            ("cp_prefix".to_string(), "abc".to_string()),
            ("region".to_string(), "us".to_string()),
        ]);
        assert_eq!(t.render(&values).unwrap(), "abc.us.cp0.konghq.com");
        assert_eq!(t.render(&HashMap::new()).unwrap_err(), "cp_prefix");
    }

    #[test]
    fn plain_text_has_no_variables() {
        let t = Template::parse("cloud.konghq.com").unwrap();
        assert_eq!(t.variables().count(), 0);
        assert_eq!(t.render(&HashMap::new()).unwrap(), "cloud.konghq.com");
    }

    #[test]
    fn rejects_broken_braces() {
        assert!(
            Template::parse("{region.x")
                .unwrap_err()
                .contains("does not close")
        );
        assert!(
            Template::parse("region}.x")
                .unwrap_err()
                .contains("without")
        );
        assert!(
            Template::parse("{}.x")
                .unwrap_err()
                .contains("variable name")
        );
        assert!(
            Template::parse("{a-b}.x")
                .unwrap_err()
                .contains("variable name")
        );
    }
}

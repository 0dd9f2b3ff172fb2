//! Variable rules: `--set KEY=VALUE` assignments checked against each profile's declarations.

use std::collections::HashMap;

use super::{Profile, Variable};
use crate::error::InputError;

/// The `--set` assignments of a run, in the order given.
#[derive(Debug, Clone, Default)]
pub struct Assignments(Vec<(String, String)>);

impl Assignments {
    /// Parses `KEY=VALUE` flags; a later assignment of a key wins.
    pub fn parse(flags: &[String]) -> Result<Assignments, InputError> {
        let mut pairs = Vec::new();
        for flag in flags {
            let (key, value) = flag
                .split_once('=')
                .ok_or_else(|| InputError::flag("--set", flag, "expected KEY=VALUE"))?;
            let key = key.trim();
            if key.is_empty() {
                return Err(InputError::flag("--set", flag, "the KEY before = is empty"));
            }
            pairs.retain(|(k, _): &(String, String)| k != key);
            pairs.push((key.to_string(), value.trim().to_string()));
        }
        Ok(Assignments(pairs))
    }

    /// The value given for `key`, if any.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The variables given a value.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }
}

/// Checks a declaration when the profile loads: a pattern that compiles, a default that obeys.
pub(super) fn check_declaration(var: &Variable) -> Result<(), String> {
    if let Some(pattern) = &var.pattern {
        compile(pattern).map_err(|e| format!("variable `{}`: bad pattern: {e}", var.name))?;
    }
    if var.required && var.default.is_some() {
        return Err(format!(
            "variable `{}` is required and has a default; choose one",
            var.name
        ));
    }
    if let Some(default) = &var.default {
        check_value(var, default)
            .map_err(|e| format!("variable `{}`: its default `{default}` {e}", var.name))?;
    }
    Ok(())
}

fn compile(pattern: &str) -> Result<regex_lite::Regex, regex_lite::Error> {
    regex_lite::Regex::new(&format!("(?i)^(?:{pattern})$"))
}

/// Why `value` is not allowed for `var`, if it is not. Values name parts of host names, so
/// case does not matter (`cp_prefix=X` is `x`).
fn check_value(var: &Variable, value: &str) -> Result<(), String> {
    if !var.allowed.is_empty() && !var.allowed.iter().any(|a| a.eq_ignore_ascii_case(value)) {
        return Err(format!(
            "is not allowed (allowed: {})",
            var.allowed.join(", ")
        ));
    }
    if let Some(pattern) = &var.pattern {
        let matches = compile(pattern)
            .map(|re| re.is_match(value))
            .unwrap_or(false);
        if !matches {
            // A whole address pasted (`abc123.us.cp0.konghq.com:443`, a URL) where one label
            // is wanted: say which part to give.
            let host = value.split_once("://").map_or(value, |(_, rest)| rest);
            let label = host.split(['.', ':', '/']).next().unwrap_or_default();
            let label_fits = label != value
                && !label.is_empty()
                && compile(pattern).is_ok_and(|re| re.is_match(label));
            if label_fits {
                return Err(format!(
                    "does not match the pattern {pattern}: it is a whole address; give only its first label, --set {}={}",
                    var.name,
                    label.to_ascii_lowercase()
                ));
            }
            return Err(format!("does not match the pattern {pattern}"));
        }
    }
    Ok(())
}

/// The values of `profile`'s variables: assigned, else default; unset optional ones are absent.
pub fn bind(profile: &Profile, set: &Assignments) -> Result<HashMap<String, String>, InputError> {
    let err = |reason: String| InputError::Variable {
        profile: profile.name.clone(),
        reason,
    };
    let mut values = HashMap::new();
    for var in &profile.variables {
        let value = match set.get(&var.name) {
            Some(value) => {
                check_value(var, value)
                    .map_err(|e| err(format!("--set {}={value} {e}", var.name)))?;
                value.to_ascii_lowercase()
            }
            None => match &var.default {
                Some(default) => default.clone(),
                None if var.required => {
                    let allowed = if var.allowed.is_empty() {
                        String::new()
                    } else {
                        format!("; allowed: {}", var.allowed.join(", "))
                    };
                    return Err(err(format!(
                        "variable `{}` is required: add --set {}=VALUE ({}{allowed})",
                        var.name, var.name, var.help
                    )));
                }
                None => continue,
            },
        };
        values.insert(var.name.clone(), value);
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::load;

    fn set(flags: &[&str]) -> Assignments {
        Assignments::parse(&flags.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn binds_assigned_values() {
        let konnect = load("konnect").unwrap();
        let values = bind(&konnect, &set(&["region=eu", "cp_prefix=abc123"])).unwrap();
        assert_eq!(values["region"], "eu");
        assert_eq!(values["cp_prefix"], "abc123");
        assert!(!values.contains_key("portal_id"));
    }

    #[test]
    fn missing_required_variable_names_it_and_its_values() {
        let konnect = load("konnect").unwrap();
        let err = bind(&konnect, &set(&["cp_prefix=abc"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`region` is required"), "{err}");
        assert!(err.contains("au, eu, me, in, sg, us"), "{err}");
    }

    #[test]
    fn disallowed_value_lists_the_allowed_ones() {
        let konnect = load("konnect").unwrap();
        let err = bind(&konnect, &set(&["region=mars", "cp_prefix=abc"]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("region=mars") && err.contains("allowed: au, eu"),
            "{err}"
        );
    }

    #[test]
    fn a_whole_address_pasted_for_a_label_says_which_part_to_give() {
        let profile = crate::profile::load("konnect").unwrap();
        for pasted in [
            "abc123.us.cp0.konghq.com",
            "abc123.us.cp0.konghq.com:443",
            "https://abc123.us.cp0.konghq.com",
        ] {
            let set = Assignments::parse(&["region=us".to_string(), format!("cp_prefix={pasted}")])
                .unwrap();
            let err = bind(&profile, &set).unwrap_err().to_string();
            assert!(
                err.contains("give only its first label, --set cp_prefix=abc123"),
                "{err}"
            );
        }
    }

    #[test]
    fn pattern_is_enforced_on_the_whole_value() {
        let konnect = load("konnect").unwrap();
        let err = bind(&konnect, &set(&["region=us", "cp_prefix=a.b"]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cp_prefix=a.b") && err.contains("pattern"),
            "{err}"
        );
    }

    #[test]
    fn values_are_host_name_parts_so_case_does_not_matter() {
        let konnect = load("konnect").unwrap();
        let values = bind(&konnect, &set(&["region=EU", "cp_prefix=X"])).unwrap();
        assert_eq!(values["region"], "eu");
        assert_eq!(values["cp_prefix"], "x");
    }

    #[test]
    fn defaults_apply_and_later_sets_win() {
        let kgw = load("kgateway").unwrap();
        let values = bind(&kgw, &set(&[])).unwrap();
        assert_eq!(values["namespace"], "gloo-system");
        let values = bind(&kgw, &set(&["namespace=a", "namespace=gloo"])).unwrap();
        assert_eq!(values["namespace"], "gloo");
    }

    #[test]
    fn malformed_set_is_refused() {
        let flags = vec!["region".to_string()];
        let err = Assignments::parse(&flags).unwrap_err().to_string();
        assert!(err.starts_with("--set region: expected KEY=VALUE"), "{err}");
    }
}

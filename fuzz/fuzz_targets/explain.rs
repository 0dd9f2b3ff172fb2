//! Any log `explain` reads (any bytes, any line) is shown as data: the human form holds no
//! control character but its line ends, and no command it suggests holds a shell's syntax
//! outside single quotes, so that pasting one runs nothing the log said.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// Whether `command` holds, outside single-quoted words, a character a POSIX shell treats as
/// syntax (substitution, a pipe, a list, a redirection, a quote of another kind).
fn shell_syntax_outside_quotes(command: &str) -> bool {
    let mut quoted = false;
    command.chars().any(|c| {
        if c == '\'' {
            quoted = !quoted;
            return false;
        }
        !quoted && "$`;|&<>(){}\"\\\n*?[]~#!".contains(c)
    })
}

fuzz_target!(|log: &[u8]| {
    let Ok(found) = preflight::explain::explain_from(log, Some("/etc/kong/kong.conf")) else {
        return;
    };
    for e in &found.errors {
        if let Some(command) = &e.command {
            assert!(command.starts_with("preflight check "), "{command}");
            assert!(!shell_syntax_outside_quotes(command), "{command}");
        }
    }
    let mut out = Vec::new();
    preflight::render::explain(&found, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "{text:?}"
    );
});

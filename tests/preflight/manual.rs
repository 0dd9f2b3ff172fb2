//! `preflight man` holds what an air-gapped host needs (issue 16): every subcommand and flag of
//! the clap definition, the exit codes, every failure kind of the JSON contract, and the
//! environment variables.

use clap::CommandFactory;
use preflight::cli::Cli;
use preflight::failure::FailureKind;

use crate::support::world::run;

#[test]
fn the_man_page_holds_every_flag_exit_code_kind_and_variable() {
    let (code, page, stderr) = run(&["man"]);
    assert_eq!(code, 0, "{stderr}");
    // roff escapes dashes.
    let page = page.replace("\\-", "-");
    let cli = Cli::command();
    for sub in cli.get_subcommands().filter(|s| s.get_name() != "help") {
        assert!(
            page.contains(&format!("preflight {}", sub.get_name())),
            "no section for {}",
            sub.get_name()
        );
        for arg in sub.get_arguments() {
            if let Some(long) = arg.get_long() {
                assert!(
                    page.contains(&format!("--{long}")),
                    "--{long} of {} is missing",
                    sub.get_name()
                );
            }
        }
    }
    for kind in FailureKind::ALL {
        assert!(
            page.contains(&format!("\\fB{kind}\\fR")),
            "{kind} is missing"
        );
    }
    assert!(page.contains(".SH \"EXIT STATUS\""), "no exit codes");
    for status in ["\\fB0\\fR", "\\fB1\\fR", "\\fB2\\fR"] {
        assert!(page.contains(status), "exit status {status} missing");
    }
    for variable in [
        "https_proxy",
        "HTTPS_PROXY",
        "http_proxy",
        "all_proxy",
        "NO_PROXY",
        "NO_COLOR",
        "COLUMNS",
        "KONG_",
    ] {
        assert!(page.contains(variable), "{variable} is missing");
    }
}

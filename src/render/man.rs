//! The manual page (`preflight man`): clap's pages for the command and each subcommand, then
//! what the flags cannot say: the forms of a target, the exit codes, every failure kind (from
//! the same table as the JSON's names), the environment, and examples. An air-gapped host
//! has no other documentation.

use std::io::{self, Write};

use crate::failure::FailureKind;

/// Writes the manual page of `command` (the clap definition of the whole CLI) to `out`.
pub fn render(command: clap::Command, out: &mut dyn Write) -> io::Result<()> {
    let man = clap_mangen::Man::new(command.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = sub.get_name().to_uppercase();
        let page = clap_mangen::Man::new(
            sub.clone()
                .bin_name(format!("preflight {}", sub.get_name())),
        );
        let mut part = Vec::new();
        page.render_synopsis_section(&mut part)?;
        page.render_description_section(&mut part)?;
        page.render_options_section(&mut part)?;
        if sub.has_subcommands() {
            page.render_subcommands_section(&mut part)?;
        }
        // One page: each subcommand's sections under its own heading.
        let part = String::from_utf8_lossy(&part)
            .replace(".SH SYNOPSIS", &format!(".SH \"{name}\"\n.SS SYNOPSIS"))
            .replace(".SH DESCRIPTION", ".SS DESCRIPTION")
            .replace(".SH OPTIONS", ".SS OPTIONS")
            .replace(".SH SUBCOMMANDS", ".SS SUBCOMMANDS");
        out.write_all(part.as_bytes())?;
    }
    write!(out, "{}", TARGETS)?;
    write!(out, "{}", EXIT_STATUS)?;
    writeln!(out, ".SH \"FAILURE KINDS\"")?;
    writeln!(
        out,
        "Every failed or warned check carries one of these kinds, the phase it occurred in, a message and a hint."
    )?;
    for kind in FailureKind::ALL {
        let phases: Vec<&str> = kind.phases().iter().map(|p| p.as_str()).collect();
        writeln!(
            out,
            ".TP\n\\fB{}\\fR ({})",
            roff(kind.as_str()),
            phases.join(", ")
        )?;
        writeln!(out, "{}", roff(&kind.meaning().replace('`', "")))?;
    }
    write!(out, "{}", ENVIRONMENT)?;
    write!(out, "{}", EXAMPLES)?;
    man.render_version_section(out)
}

/// Text safe in roff: backslashes and dashes escaped, no line starting with a dot.
fn roff(text: &str) -> String {
    let text = text.replace('\\', "\\\\").replace('-', "\\-");
    match text.starts_with(['.', '\'']) {
        true => format!("\\&{text}"),
        false => text,
    }
}

const TARGETS: &str = r#".SH TARGETS
.TP
\fBtcp://HOST:PORT\fR, \fBHOST:PORT\fR
a TCP connection; \fBtcp://10.0.0.5:9000\-9100\fR is one check per port
.TP
\fBtls://HOST:PORT\fR
TCP, then a TLS handshake with the chain verified
.TP
\fBhttps://HOST[:PORT][/PATH]\fR, \fBhttp://…\fR
an HTTP request over TLS (or not); any status below 500 passes unless \-\-expect\-status
.TP
\fBwss://HOST[:PORT][/PATH]\fR, \fBws://…\fR
a WebSocket upgrade
.TP
\fBdns://HOST\fR
name resolution only
.TP
\fBudp://HOST:PORT\fR
a datagram; silence is a warning (open or filtered)
.TP
\fBbind://ADDR:PORT\fR
whether this host can listen there (0.0.0.0, 127.0.0.1, [::])
.PP
IPv6 addresses go in brackets: \fBtcp://[2001:db8::7]:443\fR.
"#;

const EXIT_STATUS: &str = r#".SH "EXIT STATUS"
.TP
\fB0\fR
every required check is ok (warnings allowed unless \-\-strict)
.TP
\fB1\fR
a required check failed, or Ctrl\-C or SIGTERM ended the run (the report so far is written)
.TP
\fB2\fR
bad input: one line on standard error names the flag, file and line, or variable; nothing is probed
"#;

const ENVIRONMENT: &str = r#".SH ENVIRONMENT
.TP
\fBhttps_proxy\fR, \fBHTTPS_PROXY\fR
the proxy of tls, https and wss checks (lower case first, as curl)
.TP
\fBhttp_proxy\fR
the proxy of http and ws checks (upper\-case HTTP_PROXY is ignored, as curl does)
.TP
\fBall_proxy\fR, \fBALL_PROXY\fR
the proxy of every other check, and the fallback of the two above
.TP
\fBno_proxy\fR, \fBNO_PROXY\fR
hosts, domains (.internal), addresses and ranges (10.0.0.0/8) that go direct; * for all. It also exempts hosts from a kong.conf proxy_server. The order: \-\-proxy, then kong.conf, then these variables
.TP
\fBNO_COLOR\fR
no colour in the human report
.TP
\fBCOLUMNS\fR
the width of the human report (else the terminal's, else 80)
.TP
\fBKONG_*\fR
with \-\-kong\-conf, a KONG_ variable overrides the kong.conf setting of the same name (KONG_CLUSTER_CONTROL_PLANE), as Kong reads it
"#;

const EXAMPLES: &str = r#".SH EXAMPLES
.TP
\fBpreflight check \-\-profile konnect \-\-set region=eu \-\-set cp_prefix=abc123\fR
every Konnect endpoint of an EU control plane
.TP
\fBpreflight check \-\-kong\-conf /etc/kong/kong.conf\fR
what a data plane's own configuration points at, with its certificates and proxy
.TP
\fBpreflight check \-\-proxy http://proxy.corp:3128 \-\-compare\-direct tls://abc123.eu.cp0.konghq.com:443\fR
through the site's proxy, and directly, side by side
.TP
\fBpreflight check \-\-format junit \-o report.xml \-\-profile konnect …\fR
a CI step's report
.TP
\fBpreflight allowlist \-\-profile konnect \-\-set region=eu \-\-set cp_prefix=abc123 \-\-format csv\fR
what to ask the network team for
"#;

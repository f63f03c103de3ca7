//! `rel completions SHELL` and `rel man`: generated from the clap definitions of `src/cli.rs`.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, Shell};
use crate::{Error, Exit};

pub(super) fn completions(args: CompletionsArgs) -> Result<Exit, Error> {
    let shell = match args.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
        Shell::Powershell => clap_complete::Shell::PowerShell,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "rel", &mut out);
    crate::commands::print_stdout(&String::from_utf8_lossy(&out));
    Ok(Exit::Ok)
}

/// One page: rel(1) with every subcommand's flags as a section.
pub(super) fn man() -> Result<Exit, Error> {
    let cmd = Cli::command();
    let mut out = Vec::new();
    let write_err = |e: std::io::Error| Error::io("write the manual page", "<stdout>", e);
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(&mut out).map_err(write_err)?;
    man.render_name_section(&mut out).map_err(write_err)?;
    man.render_synopsis_section(&mut out).map_err(write_err)?;
    man.render_description_section(&mut out)
        .map_err(write_err)?;
    man.render_options_section(&mut out).map_err(write_err)?;
    man.render_subcommands_section(&mut out)
        .map_err(write_err)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("rel {}", sub.get_name());
        let roff = subcommand_section(&name, sub);
        out.extend_from_slice(roff.as_bytes());
    }
    man.render_version_section(&mut out).map_err(write_err)?;
    crate::commands::print_stdout(&ascii_roff(&String::from_utf8_lossy(&out)));
    Ok(Exit::Ok)
}

/// A `.SH` section for one subcommand: its about text and its arguments (nested subcommands
/// recursively), escaped for roff.
fn subcommand_section(name: &str, cmd: &clap::Command) -> String {
    let mut s = format!(".SH \"{}\"\n", roff_escape(&name.to_uppercase()));
    if let Some(about) = cmd.get_long_about().or(cmd.get_about()) {
        for para in about.to_string().split("\n\n") {
            s.push_str(&format!(".PP\n{}\n", roff_text(para)));
        }
    }
    for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
        if arg.get_id() == "help" || arg.get_id() == "version" || arg.is_global_set() {
            continue;
        }
        let mut head = Vec::new();
        if let Some(short) = arg.get_short() {
            head.push(format!("\\-{short}"));
        }
        if let Some(long) = arg.get_long() {
            head.push(format!("\\-\\-{}", roff_escape(long)));
        }
        let value = arg.get_value_names().map(|v| {
            v.iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        });
        let mut head = head.join(", ");
        if head.is_empty() {
            head = format!(
                "<{}>",
                value.clone().unwrap_or_else(|| arg.get_id().to_string())
            );
        } else if arg.get_action().takes_values()
            && let Some(v) = value
        {
            head.push_str(&format!(" <{v}>"));
        }
        s.push_str(&format!(".TP\n\\fB{head}\\fR\n"));
        if let Some(help) = arg.get_long_help().or(arg.get_help()) {
            s.push_str(&format!("{}\n", roff_text(&help.to_string())));
        }
    }
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        s.push_str(&subcommand_section(
            &format!("{name} {}", sub.get_name()),
            sub,
        ));
    }
    s
}

fn roff_escape(s: &str) -> String {
    s.replace('\\', "\\e").replace('-', "\\-")
}

/// Text lines for roff: escaped, and no line starting with `.` or `'` (a control line).
fn roff_text(s: &str) -> String {
    s.lines()
        .map(|l| {
            let l = roff_escape(l.trim_end());
            if l.starts_with('.') || l.starts_with('\'') {
                format!("\\&{l}")
            } else if l.is_empty() {
                ".br".to_owned()
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// roff input is ASCII: every other character as a groff escape (`→` is `\[u2192]`).
fn ascii_roff(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            out.push_str(&format!("\\[u{:04X}]", u32::from(c)));
        }
    }
    out
}

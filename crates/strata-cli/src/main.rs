//! `strata`: the command line of cli.md.
//!
//! Exit status: 0 on success, 1 for a refused input (a bad rule, an invalid
//! dataset), 2 for a usage error (clap's own). Output a script reads goes to
//! standard output; progress, warnings and timings to standard error.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use strata_data::{Dataset, LoadError};
use strata_engine::{Cell, Engine, EngineError, Rule};
use strata_lang::catalog::{Kind, Schema};

#[derive(Parser)]
#[command(
    name = "strata",
    version,
    about = "Segments of customers and products for online sellers"
)]
struct Cli {
    /// Print load and aggregation phases on standard error.
    #[arg(long, short, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a dataset directory and print a one-line summary.
    Check {
        /// The dataset directory.
        dir: PathBuf,
    },
    /// Print the number of members of a rule (or of each rule of a file).
    Count {
        dir: PathBuf,
        #[command(flatten)]
        kind: KindArgs,
        #[command(flatten)]
        now: NowArg,
        /// A file with one rule per line; blank lines and lines starting
        /// with `#` are skipped.
        #[arg(long, conflicts_with = "rule")]
        file: Option<PathBuf>,
        /// Print `<microseconds>\t<rule>` per rule on standard error.
        #[arg(long, requires = "file")]
        timings: bool,
        /// With `--timings`: evaluate each rule this many times and report
        /// the median.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..), requires = "timings")]
        repeat: u32,
        /// The rule, in the text form.
        #[arg(required_unless_present = "file")]
        rule: Option<String>,
    },
    /// Print the members of a rule.
    Members {
        dir: PathBuf,
        #[command(flatten)]
        kind: KindArgs,
        #[command(flatten)]
        now: NowArg,
        #[arg(long, value_enum, default_value_t = Format::Ids)]
        format: Format,
        rule: String,
    },
    /// Replay the dataset through time: at each step print
    /// `TS<TAB>count_1<TAB>count_2...`, one count per rule of RULES, and
    /// with `--events` every entry and exit before it, as
    /// `TS<TAB>enter|exit<TAB>rule<TAB>id` (rules numbered from 1) at the
    /// exact instant it happens. Every evaluation is from scratch as of its
    /// instant, so the counts equal `strata count --now TS`; with `--events`
    /// it evaluates at each instant where a change can happen, which suits
    /// small datasets.
    Replay {
        dir: PathBuf,
        #[command(flatten)]
        kind: KindArgs,
        /// One rule per line, as for `count --file`.
        #[arg(long)]
        file: PathBuf,
        /// The first instant (its state is the baseline: no events).
        #[arg(long)]
        from: String,
        /// The last instant (always included as a step).
        #[arg(long)]
        to: String,
        /// Time between steps: a number and a unit, `s`, `m`, `h`, `d` or `w`.
        #[arg(long, default_value = "1d", value_parser = parse_step)]
        step: i64,
        /// Also print each entry and exit.
        #[arg(long)]
        events: bool,
    },
    /// Print a rule's normalised text and its JSON form.
    Explain {
        #[command(flatten)]
        kind: KindArgs,
        rule: String,
    },
    /// Write a realistic synthetic dataset.
    Demo {
        dir: PathBuf,
        /// How many customers (products are about a tenth of that).
        #[arg(long, default_value_t = 10_000)]
        customers: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// The instant the data ends at (orders and daily rows lie before
        /// it). Fixed by default so that a seed always gives the same files.
        #[arg(long, default_value = "2026-11-01T00:00:00Z")]
        end: jiff::Timestamp,
    },
}

#[derive(Args)]
#[group(required = true, multiple = false)]
struct KindArgs {
    /// Rules select customers.
    #[arg(long)]
    customers: bool,
    /// Rules select products.
    #[arg(long)]
    products: bool,
}

impl KindArgs {
    fn kind(&self) -> Kind {
        if self.products {
            Kind::Product
        } else {
            Kind::Customer
        }
    }
}

#[derive(Args)]
struct NowArg {
    /// Evaluate as of this instant (RFC 3339, or a date meaning midnight in
    /// the store's time zone); the wall clock by default.
    #[arg(long)]
    now: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Ids,
    Csv,
    Json,
}

/// An input the user gave was refused: exit status 1, message as is.
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if let Some(refused) = err.downcast_ref::<Refused>() {
                eprintln!("{refused}");
            } else if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            } else {
                eprintln!("error: {err:#}");
            }
            ExitCode::from(1)
        }
    }
}

/// A reader that stopped early (`strata members ... | head`) is not an
/// error.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        let io = e.downcast_ref::<io::Error>().or_else(|| {
            match e.downcast_ref::<csv::Error>()?.kind() {
                csv::ErrorKind::Io(io) => Some(io),
                _ => None,
            }
        });
        let json = e
            .downcast_ref::<serde_json::Error>()
            .and_then(serde_json::Error::io_error_kind);
        io.map(io::Error::kind).or(json) == Some(io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> Result<()> {
    let verbose = cli.verbose;
    match cli.command {
        Command::Check { dir } => check(&dir, verbose),
        Command::Count {
            dir,
            kind,
            now,
            file,
            timings,
            repeat,
            rule,
        } => {
            let mut engine = open(&dir, now.now.as_deref(), verbose)?;
            let kind = kind.kind();
            let result = match (file, rule) {
                (Some(file), _) => count_file(&mut engine, kind, &file, timings.then_some(repeat)),
                (None, Some(rule)) => compile(&engine, kind, &rule).and_then(|rule| {
                    println!("{}", engine.evaluate(&rule)?.len());
                    Ok(())
                }),
                (None, None) => unreachable!("clap requires a rule or --file"),
            };
            exit_without_freeing(engine);
            result
        }
        Command::Members {
            dir,
            kind,
            now,
            format,
            rule,
        } => {
            let engine = open(&dir, now.now.as_deref(), verbose)?;
            let kind = kind.kind();
            let result = compile(&engine, kind, &rule).and_then(|rule| {
                let members = engine.evaluate(&rule)?;
                write_members(&engine, kind, &members, format, io::stdout().lock())
            });
            exit_without_freeing(engine);
            result
        }
        Command::Explain { kind, rule } => explain(kind.kind(), &rule),
        Command::Replay {
            dir,
            kind,
            file,
            from,
            to,
            step,
            events,
        } => replay(
            &dir,
            kind.kind(),
            &file,
            (&from, &to),
            step,
            events,
            verbose,
        ),
        Command::Demo {
            dir,
            customers,
            seed,
            end,
        } => {
            let started = Instant::now();
            let opts = strata_demo::DemoOptions {
                customers,
                seed,
                end,
            };
            let summary = strata_demo::generate(&dir, &opts)
                .with_context(|| format!("writing {}", dir.display()))?;
            eprintln!(
                "wrote {} in {:.1?}: {} products, {} customers, {} orders ({} lines), {} daily rows",
                dir.display(),
                started.elapsed(),
                summary.products,
                summary.customers,
                summary.orders,
                summary.order_lines,
                summary.daily_rows,
            );
            Ok(())
        }
    }
}

/// The process is about to end: leave the engine's gigabytes to the kernel
/// instead of freeing them one allocation at a time.
fn exit_without_freeing(engine: Engine) {
    std::mem::forget(engine);
}

fn load(dir: &Path) -> Result<Dataset> {
    match strata_data::load_dir(dir) {
        Ok(data) => Ok(data),
        Err(LoadError::Invalid(problems)) => Err(Refused(format!("{problems}")).into()),
        Err(io) => Err(anyhow::Error::new(io)),
    }
}

fn check(dir: &Path, verbose: bool) -> Result<()> {
    let data = match strata_data::load_dir(dir) {
        Ok(data) => data,
        Err(LoadError::Invalid(problems)) => {
            // For `check` the problems are the output a script reads.
            print!("{problems}");
            if !problems.to_string().ends_with('\n') {
                println!();
            }
            return Err(Refused(format!("{}: dataset refused", dir.display())).into());
        }
        Err(io) => return Err(anyhow::Error::new(io)),
    };
    let summary = data.summary();
    // Saved segments must parse, check and reference no unknown segment.
    build_engine(data, jiff::Timestamp::now(), verbose)?;
    println!("{summary}");
    Ok(())
}

fn build_engine(data: Dataset, now: jiff::Timestamp, verbose: bool) -> Result<Engine> {
    let started = Instant::now();
    let engine = Engine::new(data, now).map_err(refuse_engine)?;
    if verbose {
        eprintln!("indexes and aggregates: {:.3?}", started.elapsed());
    }
    Ok(engine)
}

fn open(dir: &Path, now: Option<&str>, verbose: bool) -> Result<Engine> {
    let started = Instant::now();
    let data = load(dir)?;
    if verbose {
        eprintln!("load: {:.3?} ({})", started.elapsed(), data.summary());
    }
    let now = match now {
        None => jiff::Timestamp::now(),
        Some(text) => parse_instant(&data, "--now", text)?,
    };
    build_engine(data, now, verbose)
}

fn refuse_engine(err: EngineError) -> anyhow::Error {
    match err {
        EngineError::Rule(r) => Refused(r.to_string()).into(),
        EngineError::OutOfRange(message) => Refused(message).into(),
        EngineError::Internal(i) => anyhow::Error::new(i),
    }
}

fn compile(engine: &Engine, kind: Kind, text: &str) -> Result<Rule> {
    engine.compile(kind, text).map_err(refuse_engine)
}

/// `timings`: how many evaluations to take the median of, when timing.
/// A step length in seconds, from `30m`, `6h`, `1d`, `2w`, `90s`.
fn parse_step(text: &str) -> Result<i64, String> {
    let unit = text.chars().last().ok_or("an empty step")?;
    let seconds = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        _ => return Err(format!("'{text}': expected a number and s, m, h, d or w")),
    };
    let amount: i64 = text[..text.len() - 1]
        .parse()
        .map_err(|_| format!("'{text}': expected a number and s, m, h, d or w"))?;
    amount
        .checked_mul(seconds)
        .filter(|&s| s > 0)
        .ok_or_else(|| {
            format!("'{text}': the step must be positive and at most a few billion years")
        })
}

/// Reads a rules file: the non-blank, non-comment lines with their line
/// numbers.
fn read_rules(file: &Path) -> Result<Vec<(usize, String)>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    Ok(text
        .lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .map(|(i, line)| (i, line.to_owned()))
        .collect())
}

fn compile_rules(
    engine: &Engine,
    kind: Kind,
    file: &Path,
    rules: &[(usize, String)],
) -> Result<Vec<Rule>> {
    rules
        .iter()
        .map(|(line, text)| {
            engine.compile(kind, text).map_err(|e| {
                Refused(format!("{}:{line}: {}", file.display(), refuse_engine(e))).into()
            })
        })
        .collect()
}

fn parse_instant(data: &Dataset, flag: &str, text: &str) -> Result<jiff::Timestamp> {
    let nanos = strata_data::parse_timestamp(text, &data.settings.timezone)
        .map_err(|e| Refused(format!("{flag}: {e} (got '{text}')")))?;
    jiff::Timestamp::from_nanosecond(i128::from(nanos)).context("instant out of range")
}

fn replay(
    dir: &Path,
    kind: Kind,
    file: &Path,
    (from, to): (&str, &str),
    step: i64,
    events: bool,
    verbose: bool,
) -> Result<()> {
    let data = std::sync::Arc::new(load(dir)?);
    let from = parse_instant(&data, "--from", from)?;
    let to = parse_instant(&data, "--to", to)?;
    if to < from {
        return Err(Refused(format!("--to ({to}) is before --from ({from})")).into());
    }
    let rules = read_rules(file)?;
    let step = jiff::SignedDuration::from_secs(step);
    let evaluate =
        |at: jiff::Timestamp| -> Result<(Engine, Vec<Rule>, Vec<roaring::RoaringBitmap>)> {
            let engine = Engine::new(data.clone(), at).map_err(refuse_engine)?;
            let compiled = compile_rules(&engine, kind, file, &rules)?;
            let members = compiled
                .iter()
                .map(|rule| engine.evaluate(rule))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((engine, compiled, members))
        };
    let mut out = BufWriter::new(io::stdout().lock());
    let (_, _, mut members) = evaluate(from)?;
    let mut at = from;
    loop {
        write!(out, "{at}")?;
        for m in &members {
            write!(out, "\t{}", m.len())?;
        }
        writeln!(out)?;
        if at >= to {
            break;
        }
        let next = at.checked_add(step).map_or(to, |next| next.min(to));
        let started = Instant::now();
        if events {
            // Evaluate at every instant where a change can happen, so that
            // each event carries its exact instant.
            let (engine, compiled, _) = evaluate(at)?;
            let refs: Vec<&Rule> = compiled.iter().collect();
            let instants = engine.breakpoints(&refs, nanos(at), nanos(next));
            for instant in instants {
                let instant = jiff::Timestamp::from_nanosecond(i128::from(instant))?;
                let (engine, _, now) = evaluate(instant)?;
                for (i, (now, then)) in now.iter().zip(&members).enumerate() {
                    for row in now - then {
                        writeln!(out, "{instant}\tenter\t{}\t{}", i + 1, engine.id(kind, row))?;
                    }
                    for row in then - now {
                        writeln!(out, "{instant}\texit\t{}\t{}", i + 1, engine.id(kind, row))?;
                    }
                }
                members = now;
            }
        } else {
            members = evaluate(next)?.2;
        }
        if verbose {
            eprintln!("{next}: {:.3?}", started.elapsed());
        }
        at = next;
    }
    out.flush()?;
    Ok(())
}

fn nanos(ts: jiff::Timestamp) -> i64 {
    strata_engine::clock::timestamp_nanos(ts)
}

fn count_file(engine: &mut Engine, kind: Kind, file: &Path, timings: Option<u32>) -> Result<()> {
    let texts = read_rules(file)?;
    let compiled = compile_rules(engine, kind, file, &texts)?;
    let rules: Vec<(&str, Rule)> = texts
        .iter()
        .map(|(_, t)| t.as_str())
        .zip(compiled)
        .collect();
    let mut out = BufWriter::new(io::stdout().lock());
    for (text, rule) in &rules {
        let mut samples = Vec::new();
        let mut members = roaring::RoaringBitmap::new();
        for _ in 0..timings.unwrap_or(1) {
            // Time each rule from a cold start: saved segments it refers to
            // are computed again, not read from the previous run.
            engine.clear_cache();
            let started = Instant::now();
            members = engine.evaluate(rule)?;
            samples.push(started.elapsed().as_micros());
        }
        writeln!(out, "{}", members.len())?;
        if timings.is_some() {
            samples.sort_unstable();
            out.flush()?;
            eprintln!("{}\t{text}", samples[samples.len() / 2]);
        }
    }
    out.flush()?;
    Ok(())
}

fn write_members(
    engine: &Engine,
    kind: Kind,
    members: &roaring::RoaringBitmap,
    format: Format,
    out: impl Write,
) -> Result<()> {
    let mut out = BufWriter::new(out);
    match format {
        Format::Ids => {
            for row in members {
                writeln!(out, "{}", engine.id(kind, row))?;
            }
        }
        Format::Csv => {
            let fields = engine.field_names(kind);
            let mut w = csv::Writer::from_writer(&mut out);
            w.write_record(&fields)?;
            let mut record = Vec::with_capacity(fields.len());
            for row in members {
                record.clear();
                record.extend(fields.iter().map(|f| engine.cell(kind, row, f).to_text()));
                w.write_record(&record)?;
            }
            w.flush()?;
        }
        Format::Json => {
            let fields = engine.field_names(kind);
            out.write_all(b"[")?;
            for (i, row) in members.iter().enumerate() {
                let mut obj = serde_json::Map::with_capacity(fields.len());
                for f in &fields {
                    obj.insert(f.clone(), cell_json(&engine.cell(kind, row, f)));
                }
                if i > 0 {
                    out.write_all(b",")?;
                }
                out.write_all(b"\n  ")?;
                serde_json::to_writer(&mut out, &obj)?;
            }
            out.write_all(if members.is_empty() { b"]\n" } else { b"\n]\n" })?;
        }
    }
    out.flush()?;
    Ok(())
}

fn cell_json(cell: &Cell<'_>) -> serde_json::Value {
    use serde_json::Value;
    match cell {
        Cell::Null => Value::Null,
        Cell::Text(s) => Value::String((*s).to_owned()),
        Cell::Tags(t) => Value::Array(t.iter().map(|s| Value::String((*s).to_owned())).collect()),
        Cell::Bool(b) => Value::Bool(*b),
        // Exact: serde_json keeps the number's text (arbitrary_precision).
        Cell::Number(d) => serde_json::from_str(&d.to_string()).unwrap_or(Value::Null),
        Cell::Instant(_) => Value::String(cell.to_text()),
    }
}

fn explain(kind: Kind, text: &str) -> Result<()> {
    // Without a dataset any `x_` name is a custom text attribute.
    let custom = strata_lang::parse(text)
        .map(|expr| custom_names(&expr))
        .unwrap_or_default();
    let schema = Schema::with_custom(kind, custom);
    let expr = strata_lang::parse_rule(text, &schema)
        .map_err(|d| Refused(d.render(text).trim_end().to_owned()))?;
    let mut out = io::stdout().lock();
    writeln!(out, "{}", strata_lang::to_text(&expr))?;
    serde_json::to_writer_pretty(&mut out, &strata_lang::json::to_json(&expr))?;
    writeln!(out)?;
    Ok(())
}

fn custom_names(expr: &strata_lang::ast::Expr) -> Vec<String> {
    use strata_lang::ast::{Expr, Operand};
    let mut out = Vec::new();
    let mut stack = vec![expr];
    while let Some(e) = stack.pop() {
        match e {
            Expr::And(xs) | Expr::Or(xs) => stack.extend(xs),
            Expr::Not(x) => stack.push(x),
            Expr::Cond(c) => {
                if let Operand::Field(id) = &c.operand
                    && id.name.starts_with("x_")
                {
                    out.push(id.name.clone());
                }
            }
        }
    }
    out
}

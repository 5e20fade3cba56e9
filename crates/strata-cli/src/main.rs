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
use strata_engine::{Engine, EngineError, Rule};
use strata_lang::catalog::{Kind, Schema};

mod serve;
mod stored;
use stored::StoreArgs;

/// jemalloc, built to back its memory with transparent huge pages
/// (`.cargo/config.toml`): the live engine's state is gigabytes read at
/// random, and with 4 KiB pages most of its reads also miss the TLB.
/// BENCHMARKS.md (issue #3, a tenth session) has the measurements.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
    ///
    /// The data comes from the dataset directory DIR, or from a store
    /// (`--data-dir` or `--database-url`, as `strata import` wrote it; its
    /// saved segments are usable by `in_segment`).
    Count {
        /// The dataset directory (omitted with `--data-dir` or
        /// `--database-url`).
        dir: Option<PathBuf>,
        #[command(flatten)]
        source: StoreArgs,
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
        /// The rule, in the text form (unless `--file`).
        rule: Option<String>,
    },
    /// Print the members of a rule, from a dataset directory or a store
    /// (as for `count`).
    Members {
        /// The dataset directory (omitted with `--data-dir` or
        /// `--database-url`).
        dir: Option<PathBuf>,
        #[command(flatten)]
        source: StoreArgs,
        #[command(flatten)]
        kind: KindArgs,
        #[command(flatten)]
        now: NowArg,
        #[arg(long, value_enum, default_value_t = Format::Ids)]
        format: Format,
        rule: Option<String>,
    },
    /// Load a dataset directory into a store: validated whole first (a
    /// refused dataset writes nothing), then written in batches inside one
    /// import that completes or leaves no trace. Idempotent: products,
    /// customers, orders, order lines (by order and position), daily rows,
    /// segments and tier schemes are upserted by their ids; nothing is
    /// deleted. Prints what changed per kind.
    /// Serve the HTTP API (JSON under /api/v1, docs at /api/v1/docs) on a
    /// store.
    Serve(serve::ServeArgs),
    /// Manage users (`strata user create EMAIL [--admin]`).
    #[command(subcommand)]
    User(serve::UserCommand),
    Import {
        dir: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Feed a dataset's rows into a store's live engine as changes, each
    /// committed (with the membership events it causes) before it is
    /// acknowledged as `ack<TAB>SEQ<TAB>product|customer|daily|order<TAB>ID`
    /// on standard output. Products and customers that differ from the
    /// store come first, then daily rows and orders in time order, the
    /// engine clock following them. Rows the store holds already are
    /// skipped, so an interrupted ingest resumes where it stopped.
    Ingest {
        dir: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
        /// Feed only rows dated up to this instant, then move the clock to
        /// it.
        #[arg(long)]
        until: Option<String>,
        /// Also print every event: `TS<TAB>enter|exit<TAB>SEGMENT<TAB>ID`
        /// and `TS<TAB>tier<TAB>CUSTOMER<TAB>FROM<TAB>TO`.
        #[arg(long)]
        events: bool,
    },
    /// Replay the dataset through time: at each step print
    /// `TS<TAB>count_1<TAB>count_2...`, one count per rule of RULES, and
    /// with `--events` every entry and exit before it, as
    /// `TS<TAB>enter|exit<TAB>rule<TAB>id` (rules numbered from 1) at the
    /// exact instant it happens. The live engine starts from the data as of
    /// `--from` and takes the order lines and daily rows dated after it in
    /// time order while its clock moves, so the counts equal `strata count
    /// --now TS`.
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
            source,
            kind,
            now,
            file,
            timings,
            repeat,
            rule,
        } => {
            let (source, rule) = Source::resolve(dir, source, rule)?;
            let mut engine = open(&source, now.now.as_deref(), verbose)?;
            let kind = kind.kind();
            let result = match (file, rule) {
                (Some(file), _) => count_file(&mut engine, kind, &file, timings.then_some(repeat)),
                (None, Some(rule)) => compile(&engine, kind, &rule).and_then(|rule| {
                    println!("{}", engine.evaluate(&rule)?.len());
                    Ok(())
                }),
                (None, None) => usage_error("a RULE or --file RULES is required"),
            };
            exit_without_freeing(engine);
            result
        }
        Command::Members {
            dir,
            source,
            kind,
            now,
            format,
            rule,
        } => {
            let (source, rule) = Source::resolve(dir, source, rule)?;
            let rule = rule.unwrap_or_else(|| usage_error("a RULE is required"));
            let engine = open(&source, now.now.as_deref(), verbose)?;
            let kind = kind.kind();
            let result = compile(&engine, kind, &rule).and_then(|rule| {
                let members = engine.evaluate(&rule)?;
                write_members(&engine, kind, &members, format, io::stdout().lock())
            });
            exit_without_freeing(engine);
            result
        }
        Command::Import { dir, store } => stored::import(&dir, &store),
        Command::Serve(args) => serve::serve(args),
        Command::User(cmd) => serve::user(cmd),
        Command::Ingest {
            dir,
            store,
            until,
            events,
        } => stored::ingest(&dir, &store, until.as_deref(), events),
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

/// Where `count` and `members` read their data.
enum Source {
    Dir(PathBuf),
    Store(StoreArgs),
}

impl Source {
    /// With a store option the first positional argument is the rule, not
    /// a directory (clap fills positionals in order).
    fn resolve(
        dir: Option<PathBuf>,
        store: StoreArgs,
        rule: Option<String>,
    ) -> Result<(Source, Option<String>)> {
        if store.given() {
            return match (dir, rule) {
                (Some(_), Some(_)) => usage_error(
                    "a dataset directory and --data-dir/--database-url exclude each other",
                ),
                (Some(dir), None) => Ok((
                    Source::Store(store),
                    Some(dir.to_string_lossy().into_owned()),
                )),
                (None, rule) => Ok((Source::Store(store), rule)),
            };
        }
        match dir {
            Some(dir) => Ok((Source::Dir(dir), rule)),
            None => {
                usage_error("a dataset directory DIR, --data-dir or --database-url is required")
            }
        }
    }
}

/// A usage error the way clap reports its own (exit status 2).
fn usage_error(message: &str) -> ! {
    use clap::CommandFactory;
    Cli::command()
        .error(clap::error::ErrorKind::MissingRequiredArgument, message)
        .exit()
}

fn open(source: &Source, now: Option<&str>, verbose: bool) -> Result<Engine> {
    let started = Instant::now();
    let data = match source {
        Source::Dir(dir) => load(dir)?,
        Source::Store(store) => stored::load_stored(store)?,
    };
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

/// Something the replay feeds into the live engine, at its instant.
#[derive(Clone, Copy)]
enum Arrival {
    /// A `product_daily.csv` row, at the first instant of its date.
    Daily(usize),
    /// A whole order, every line of it, at its `ordered_at`.
    Order(usize),
}

/// The rules of a replay as segments of the engine: their names, and the
/// rule (index into the file's rules) of each name.
struct RuleNames {
    names: Vec<String>,
    index: std::collections::HashMap<String, usize>,
}

impl RuleNames {
    /// `#1`, `#2`, ...; with more `#` in front if the dataset has segments
    /// whose names could collide.
    fn new(data: &Dataset, rules: usize) -> RuleNames {
        let mut prefix = "#".to_owned();
        while data.segments.iter().any(|s| s.name.starts_with(&prefix)) {
            prefix.push('#');
        }
        let names: Vec<String> = (1..=rules).map(|i| format!("{prefix}{i}")).collect();
        let index = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        RuleNames { names, index }
    }
}

fn refuse_live(
    err: strata_live::LiveError,
    file: &Path,
    rules: &[(usize, String)],
    names: &RuleNames,
) -> anyhow::Error {
    use strata_live::LiveError;
    match err {
        LiveError::Rule(mut e) => match e.segment.as_deref().and_then(|n| names.index.get(n)) {
            Some(&i) => {
                e.segment = None;
                Refused(format!("{}:{}: {e}", file.display(), rules[i].0)).into()
            }
            None => Refused(e.to_string()).into(),
        },
        LiveError::Engine(e) => refuse_engine(e),
        other => anyhow::Error::new(other),
    }
}

/// The first saved segment or rule, in order, whose text does not parse
/// and check on its own. The live engine installs each segment after the
/// ones it refers to, and so reports a segment waiting for a broken one
/// rather than the broken one.
fn first_rule_error(data: &Dataset) -> Option<strata_engine::RuleError> {
    data.segments.iter().find_map(|seg| {
        let (kind, custom) = match seg.kind {
            strata_data::SegmentKind::Customer => (Kind::Customer, &data.customers.custom),
            strata_data::SegmentKind::Product => (Kind::Product, &data.products.custom),
        };
        let schema = Schema::with_custom(kind, custom.iter().map(|c| c.name.clone()));
        strata_engine::parse_saved_rule(seg, &schema).err()
    })
}

/// Prints the member events of the rules, in the engine's order, each at
/// its own instant. Changes of one (rule, entity) at one instant are
/// netted (a window expiring and an order arriving at the same instant
/// leave nothing to report), so every printed event is a real change
/// between one nanosecond before its instant and the instant.
fn write_events(
    out: &mut impl Write,
    events: &[strata_live::Event],
    names: &RuleNames,
) -> Result<()> {
    struct Net<'a> {
        rule: usize,
        entity: &'a str,
        before: bool,
        after: bool,
    }
    let mut ours = Vec::new();
    for event in events {
        if let strata_live::Event::Member {
            at,
            segment,
            entity,
            enter,
            ..
        } = event
            && let Some(&rule) = names.index.get(&**segment)
        {
            ours.push((*at, rule, &**entity, *enter));
        }
    }
    for group in ours.chunk_by(|a, b| a.0 == b.0) {
        let mut net: Vec<Net<'_>> = Vec::new();
        let mut seen: std::collections::HashMap<(usize, &str), usize> =
            std::collections::HashMap::new();
        for &(_, rule, entity, enter) in group {
            match seen.entry((rule, entity)) {
                std::collections::hash_map::Entry::Occupied(slot) => {
                    net[*slot.get()].after = enter;
                }
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(net.len());
                    net.push(Net {
                        rule,
                        entity,
                        before: !enter,
                        after: enter,
                    });
                }
            }
        }
        let at = jiff::Timestamp::from_nanosecond(i128::from(group[0].0))?;
        for n in net.iter().filter(|n| n.before != n.after) {
            let what = if n.after { "enter" } else { "exit" };
            writeln!(out, "{at}\t{what}\t{}\t{}", n.rule + 1, n.entity)?;
        }
    }
    Ok(())
}

fn write_counts(
    out: &mut impl Write,
    at: jiff::Timestamp,
    live: &strata_live::LiveEngine,
    names: &RuleNames,
) -> Result<()> {
    write!(out, "{at}")?;
    for name in &names.names {
        let count = live
            .count(name)
            .with_context(|| format!("internal error: segment '{name}' is missing"))?;
        write!(out, "\t{count}")?;
    }
    writeln!(out)?;
    Ok(())
}

/// `strata replay`: the dataset as of `--from` goes into the live engine
/// with the rules as segments; then the order lines and daily rows dated
/// after it arrive in time order while the clock moves, and the counts are
/// printed at every step (and the events, each at its own instant).
fn replay(
    dir: &Path,
    kind: Kind,
    file: &Path,
    (from, to): (&str, &str),
    step: i64,
    events: bool,
    verbose: bool,
) -> Result<()> {
    let started = Instant::now();
    let full = load(dir)?;
    let from = parse_instant(&full, "--from", from)?;
    let to = parse_instant(&full, "--to", to)?;
    if to < from {
        return Err(Refused(format!("--to ({to}) is before --from ({from})")).into());
    }
    let rules = read_rules(file)?;
    let step = jiff::SignedDuration::from_secs(step);
    let tz = full.settings.timezone.clone();
    let (from_n, to_n) = (nanos(from), nanos(to));
    let (from_day, to_day) = (
        strata_engine::clock::date_of(from_n, &tz),
        strata_engine::clock::date_of(to_n, &tz),
    );

    // The engine starts from the data as of `--from`; the rest is fed.
    let mut data = full.until(from_n, from_day);
    let names = RuleNames::new(&data, rules.len());
    let segment_kind = match kind {
        Kind::Customer => strata_data::SegmentKind::Customer,
        Kind::Product => strata_data::SegmentKind::Product,
    };
    for (name, (_, text)) in names.names.iter().zip(&rules) {
        data.segments.push(strata_data::SavedSegment {
            name: name.clone(),
            kind: segment_kind,
            rule: strata_data::RuleSource::Text(text.clone()),
            description: None,
        });
    }
    let mut live = strata_live::LiveEngine::new(&data, from).map_err(|e| {
        let e = match e {
            strata_live::LiveError::Rule(_) => {
                first_rule_error(&data).map_or(e, strata_live::LiveError::Rule)
            }
            other => other,
        };
        refuse_live(e, file, &rules, &names)
    })?;
    if verbose {
        eprintln!("load and initial state: {:.3?}", started.elapsed());
    }

    let mut feed: Vec<(strata_data::Nanos, Arrival)> = Vec::new();
    for r in 0..full.daily.len() {
        let date = full.daily.date[r];
        if date > from_day && date <= to_day {
            let at = strata_engine::clock::day_start(date, &tz);
            feed.push((at, Arrival::Daily(r)));
        }
    }
    for o in 0..full.orders.len() {
        let at = full.orders.ordered_at[o];
        if at > from_n && at <= to_n {
            feed.push((at, Arrival::Order(o)));
        }
    }
    // Stable: daily rows before orders at one instant, file order within.
    feed.sort_by_key(|&(at, arrival)| (at, matches!(arrival, Arrival::Order(_))));
    let order_lines = full.lines_by_order();

    let mut out = BufWriter::new(io::stdout().lock());
    write_counts(&mut out, from, &live, &names)?;
    let refuse = |e| refuse_live(e, file, &rules, &names);
    let mut pending = feed.iter().peekable();
    let mut happened = Vec::new();
    let mut at = from;
    while at < to {
        let next = at.checked_add(step).map_or(to, |next| next.min(to));
        let next_n = nanos(next);
        let started = Instant::now();
        happened.clear();
        while let Some(&(instant, arrival)) = pending.next_if(|(instant, _)| *instant <= next_n) {
            happened.extend(live.advance_to(instant).map_err(refuse)?);
            let change = match arrival {
                Arrival::Daily(r) => strata_live::feed::daily_change(&full, r),
                Arrival::Order(o) => strata_live::feed::order_change(&full, o, order_lines.of(o)),
            };
            happened.extend(live.apply(change).map_err(refuse)?);
        }
        happened.extend(live.advance_to(next_n).map_err(refuse)?);
        if events {
            write_events(&mut out, &happened, &names)?;
        }
        write_counts(&mut out, next, &live, &names)?;
        if verbose {
            eprintln!("{next}: {:.3?}", started.elapsed());
        }
        at = next;
    }
    out.flush()?;
    // The process is about to end: leave the engine to the kernel.
    std::mem::forget(live);
    Ok(())
}

fn nanos(ts: jiff::Timestamp) -> i64 {
    strata_engine::clock::timestamp_nanos(ts)
}

/// An instant as RFC 3339 (UTC).
use strata_engine::cell::format_instant as instant_text;

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
                    obj.insert(f.clone(), engine.cell(kind, row, f).to_json());
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

//! Customers: who signs up when, in which marketplace, and how they buy.

use std::path::Path;

use crate::DemoError;
use crate::catalogue::{DEPTS, MARKET_SHARE, MARKETS};
use crate::out::{CsvOut, push_padded, push_text};
use crate::rng::Rng;
use crate::time::{DAY, YEAR, push_timestamp};

/// Buying behaviour. The mix gives the skewed orders-per-customer curve of
/// a real store: many one-off buyers, a loyal core, a few heavy accounts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Signed up (newsletter, abandoned checkout) and never bought.
    Never,
    OneOff,
    Occasional,
    Loyal,
    Heavy,
}

const KIND_SHARE: [(Kind, f64); 5] = [
    (Kind::Never, 0.10),
    (Kind::OneOff, 0.38),
    (Kind::Occasional, 0.34),
    (Kind::Loyal, 0.15),
    (Kind::Heavy, 0.03),
];

pub(crate) struct CustomerPlan {
    pub created: i64,
    pub market: u8,
    pub kind: Kind,
    /// Buys by the case; tagged `wholesale`.
    pub wholesale: bool,
    /// The department this customer returns to.
    pub fav_dept: u8,
}

/// Width of the zero-padded number in `C0000042`.
pub(crate) const ID_WIDTH: usize = 7;

/// UTC offset in hours of each marketplace's shoppers, for the daily rhythm.
const UTC_OFFSET: [i64; 3] = [-5, 0, 1];
/// Relative order activity by local hour: quiet nights, an evening peak.
const HOURLY: [f64; 24] = [
    0.6, 0.35, 0.2, 0.15, 0.15, 0.2, 0.4, 0.7, 1.0, 1.2, 1.3, 1.35, 1.4, 1.35, 1.3, 1.3, 1.35,
    1.45, 1.6, 1.8, 1.9, 1.8, 1.4, 0.9,
];

/// A moment on the UTC day of `t` when a shopper in `market` is likely
/// awake.
pub(crate) fn time_of_day(rng: &mut Rng, t: i64, market: u8) -> i64 {
    let hour = rng.weighted(&HOURLY) as i64;
    let local = hour * 3600 + rng.int(0, 3599);
    t.div_euclid(DAY) * DAY + local - UTC_OFFSET[market as usize] * 3600
}

/// Sign-ups in id order: a thin trickle since the founding and most of
/// them in the last two years as the store grows.
pub(crate) fn plan(
    n: usize,
    founding: i64,
    end: i64,
    launch: &[i64; 3],
    rng: &mut Rng,
) -> Vec<CustomerPlan> {
    let span = (end - founding) as f64;
    let mut created: Vec<i64> = (0..n)
        .map(|_| {
            if rng.chance(0.06) {
                founding + (span * rng.f64()) as i64
            } else {
                loop {
                    let back = rng.exp(YEAR);
                    if back < span {
                        break end - 1 - back as i64;
                    }
                }
            }
        })
        .collect();
    created.sort_unstable();
    let kind_weights: Vec<f64> = KIND_SHARE.iter().map(|k| k.1).collect();
    let dept_weights: Vec<f64> = DEPTS.iter().map(|d| d.share).collect();
    let mut plans: Vec<CustomerPlan> = created
        .into_iter()
        .map(|t| {
            let open: Vec<f64> = (0..3)
                .map(|m| if launch[m] <= t { MARKET_SHARE[m] } else { 0.0 })
                .collect();
            let market = rng.weighted(&open) as u8;
            let mut at = time_of_day(rng, t, market);
            if at >= end || at < launch[market as usize] {
                at = t;
            }
            let kind = KIND_SHARE[rng.weighted(&kind_weights)].0;
            let wholesale = match kind {
                Kind::Heavy => rng.chance(0.3),
                Kind::Loyal => rng.chance(0.02),
                _ => false,
            };
            CustomerPlan {
                created: at,
                market,
                kind,
                wholesale,
                fav_dept: rng.weighted(&dept_weights) as u8,
            }
        })
        .collect();
    // Ids follow sign-up order, as in a shop system.
    plans.sort_by_key(|p| p.created);
    plans
}

const FIRST_EN: &[&str] = &[
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Chris",
    "Karen",
    "Daniel",
    "Emily",
    "Matthew",
    "Olivia",
    "Anthony",
    "Emma",
    "Mark",
    "Sophia",
    "Andrew",
    "Grace",
    "Joshua",
    "Chloe",
    "Ryan",
    "Zoe",
    "Liam",
    "Amelia",
    "Noah",
    "Isla",
    "Oliver",
    "Harper",
    "Seán",
    "Aoife",
];
const LAST_EN: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Wilson",
    "Anderson",
    "Taylor",
    "Thomas",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Thompson",
    "White",
    "Harris",
    "Clark",
    "Lewis",
    "Walker",
    "Hall",
    "Young",
    "King",
    "Wright",
    "Evans",
    "Roberts",
    "Patel",
    "Murphy",
    "O'Brien",
    "Kelly",
    "Nguyen",
    "Campbell",
];
const FIRST_DE: &[&str] = &[
    "Lukas",
    "Anna",
    "Jonas",
    "Lea",
    "Leon",
    "Lena",
    "Finn",
    "Hannah",
    "Paul",
    "Mia",
    "Felix",
    "Emilia",
    "Maximilian",
    "Sophie",
    "Jürgen",
    "Sabine",
    "Thomas",
    "Katrin",
    "Stefan",
    "Julia",
    "Matthias",
    "Laura",
    "Tobias",
    "Jana",
    "Andreas",
    "Claudia",
    "Florian",
    "Nina",
    "Sebastian",
    "Marie",
];
const LAST_DE: &[&str] = &[
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Schäfer",
    "Koch",
    "Bauer",
    "Richter",
    "Klein",
    "Wolf",
    "Schröder",
    "Neumann",
    "Schwarz",
    "Zimmermann",
    "Braun",
    "Krüger",
    "Hofmann",
    "Hartmann",
    "Lange",
    "Weiß",
    "Huber",
    "Gruber",
];

/// (country, share within its marketplace, cities).
type Country = (&'static str, f64, &'static [&'static str]);
const COUNTRIES: [&[Country]; 3] = [
    &[
        (
            "US",
            0.95,
            &[
                "New York",
                "Los Angeles",
                "Chicago",
                "Houston",
                "Phoenix",
                "Philadelphia",
                "San Antonio",
                "San Diego",
                "Dallas",
                "Austin",
                "Seattle",
                "Denver",
                "Boston",
                "Atlanta",
                "Miami",
                "Portland",
            ],
        ),
        ("CA", 0.05, &["Toronto", "Vancouver", "Montréal", "Calgary"]),
    ],
    &[
        (
            "GB",
            0.93,
            &[
                "London",
                "Manchester",
                "Birmingham",
                "Leeds",
                "Glasgow",
                "Bristol",
                "Edinburgh",
                "Liverpool",
            ],
        ),
        ("IE", 0.07, &["Dublin", "Cork", "Galway"]),
    ],
    &[
        (
            "DE",
            0.85,
            &[
                "Berlin",
                "Hamburg",
                "München",
                "Köln",
                "Frankfurt am Main",
                "Stuttgart",
                "Düsseldorf",
                "Leipzig",
            ],
        ),
        ("AT", 0.10, &["Wien", "Graz", "Salzburg"]),
        ("CH", 0.05, &["Zürich", "Basel", "Bern"]),
    ],
];

/// Email domains by marketplace with weights; `example.com` appears
/// everywhere (test accounts and placeholder addresses), and Amazon's
/// relay addresses stand in for buyers whose real address is hidden.
const DOMAINS: [&[(&str, f64)]; 3] = [
    &[
        ("gmail.com", 34.0),
        ("yahoo.com", 11.0),
        ("outlook.com", 9.0),
        ("icloud.com", 9.0),
        ("hotmail.com", 6.0),
        ("aol.com", 3.0),
        ("example.com", 6.0),
        ("marketplace.amazon.com", 12.0),
        ("contoso.com", 5.0),
        ("fabrikam.com", 5.0),
    ],
    &[
        ("gmail.com", 30.0),
        ("hotmail.co.uk", 14.0),
        ("outlook.com", 8.0),
        ("btinternet.com", 7.0),
        ("yahoo.co.uk", 8.0),
        ("example.com", 6.0),
        ("marketplace.amazon.co.uk", 12.0),
        ("icloud.com", 8.0),
    ],
    &[
        ("gmx.de", 22.0),
        ("web.de", 20.0),
        ("gmail.com", 20.0),
        ("t-online.de", 10.0),
        ("outlook.de", 6.0),
        ("example.com", 6.0),
        ("marketplace.amazon.de", 12.0),
    ],
];

fn push_email_part(buf: &mut Vec<u8>, name: &str) {
    for c in name.chars() {
        match c {
            'ä' => buf.extend_from_slice(b"ae"),
            'ö' => buf.extend_from_slice(b"oe"),
            'ü' => buf.extend_from_slice(b"ue"),
            'ß' => buf.extend_from_slice(b"ss"),
            'é' | 'É' => buf.push(b'e'),
            c if c.is_ascii_alphanumeric() => buf.push(c.to_ascii_lowercase() as u8),
            _ => {}
        }
    }
}

fn initial(name: &str) -> &str {
    name.char_indices().nth(1).map_or(name, |(i, _)| &name[..i])
}

/// Buying totals of one customer, over counting lines.
#[derive(Clone, Copy, Default)]
pub(crate) struct CustomerStats {
    pub orders: u32,
    pub revenue: i64,
    pub profit: i64,
}

/// Writes customers.csv. `vip_from` is the spend (cents) above which the
/// merchant tags a customer `vip`, mostly.
pub(crate) fn write(
    dir: &Path,
    plans: &[CustomerPlan],
    stats: &[CustomerStats],
    vip_from: i64,
    seed: u64,
) -> Result<(), DemoError> {
    let mut rng = Rng::new(seed, crate::rng::stream::CUSTOMER_ROWS);
    let mut out = CsvOut::create(
        dir,
        "customers.csv",
        &[
            "customer_id",
            "email",
            "first_name",
            "last_name",
            "country",
            "city",
            "marketplace",
            "tags",
            "accepts_marketing",
            "created_at",
            "x_source",
        ],
    )?;
    let domain_weights: Vec<Vec<f64>> = DOMAINS
        .iter()
        .map(|d| d.iter().map(|x| x.1).collect())
        .collect();
    let country_weights: Vec<Vec<f64>> = COUNTRIES
        .iter()
        .map(|c| c.iter().map(|x| x.1).collect())
        .collect();
    for (i, (plan, st)) in plans.iter().zip(stats).enumerate() {
        let m = plan.market as usize;
        let (firsts, lasts) = if m == 2 {
            (FIRST_DE, LAST_DE)
        } else {
            (FIRST_EN, LAST_EN)
        };
        let first = *rng.pick(firsts);
        let last = *rng.pick(lasts);
        let b = &mut out.buf;
        b.push(b'C');
        push_padded(b, i as u64 + 1, ID_WIDTH);
        b.push(b',');
        // Email: unique by construction (it carries the customer number).
        if rng.chance(0.97) {
            let domain = DOMAINS[m][rng.weighted(&domain_weights[m])].0;
            let number = i as u64 + 1;
            match rng.below(4) {
                0 => {
                    push_email_part(b, first);
                    b.push(b'.');
                    push_email_part(b, last);
                    crate::out::push_u64(b, number);
                }
                1 => {
                    push_email_part(b, initial(first));
                    push_email_part(b, last);
                    crate::out::push_u64(b, number);
                }
                2 => {
                    push_email_part(b, first);
                    b.push(b'_');
                    crate::out::push_u64(b, number);
                }
                _ => {
                    push_email_part(b, last);
                    push_email_part(b, initial(first));
                    crate::out::push_u64(b, number);
                }
            }
            b.push(b'@');
            // A few addresses were typed with capitals; email_domain lower-cases.
            if rng.chance(0.01) {
                let mut chars = domain.chars();
                if let Some(c) = chars.next() {
                    b.push(c.to_ascii_uppercase() as u8);
                    b.extend_from_slice(chars.as_str().as_bytes());
                }
            } else {
                b.extend_from_slice(domain.as_bytes());
            }
        }
        b.push(b',');
        if rng.chance(0.98) {
            push_text(b, first);
        }
        b.push(b',');
        if rng.chance(0.98) {
            push_text(b, last);
        }
        b.push(b',');
        if rng.chance(0.985) {
            let (country, _, cities) = COUNTRIES[m][rng.weighted(&country_weights[m])];
            b.extend_from_slice(country.as_bytes());
            b.push(b',');
            if rng.chance(0.97) {
                let city: &&str = rng.pick(cities);
                push_text(b, city);
            }
        } else {
            b.push(b',');
        }
        b.push(b',');
        b.extend_from_slice(MARKETS[m].as_bytes());
        b.push(b',');
        let marketing = if rng.chance(0.05) {
            None
        } else {
            Some(rng.chance(if plan.kind == Kind::Never { 0.7 } else { 0.45 }))
        };
        let mut tags: Vec<&str> = Vec::new();
        if st.revenue > vip_from && rng.chance(0.85) || rng.chance(0.002) {
            tags.push("vip");
        }
        if plan.wholesale {
            tags.push("wholesale");
        }
        if marketing == Some(true) && rng.chance(0.6) {
            tags.push("newsletter");
        }
        if matches!(plan.kind, Kind::Loyal | Kind::Heavy) && rng.chance(0.3) {
            tags.push("loyalty");
        }
        if rng.chance(0.003) {
            tags.push("employee");
        }
        for (k, t) in tags.iter().enumerate() {
            if k > 0 {
                b.push(b';');
            }
            b.extend_from_slice(t.as_bytes());
        }
        b.push(b',');
        match marketing {
            Some(true) => b.extend_from_slice(b"true"),
            Some(false) => b.extend_from_slice(b"false"),
            None => {}
        }
        b.push(b',');
        push_timestamp(b, plan.created);
        b.push(b',');
        let source = ["ads", "organic", "referral", "social", "email", ""]
            [rng.weighted(&[35.0, 35.0, 12.0, 12.0, 3.0, 3.0])];
        b.extend_from_slice(source.as_bytes());
        out.end_row()?;
    }
    out.finish()
}

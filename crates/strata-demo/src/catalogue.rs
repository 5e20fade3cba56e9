//! The product catalogue: departments, variation families, listings.

use std::collections::HashSet;

use crate::rng::{Alias, Rng};
use crate::time::{DAY, YEAR};

pub(crate) const MARKETS: [&str; 3] = ["US", "UK", "DE"];
/// Customers split between marketplaces in these proportions once all are
/// open; the catalogue is listed in about the same proportions.
pub(crate) const MARKET_SHARE: [f64; 3] = [0.55, 0.25, 0.20];
/// The store opened on Amazon US and expanded to Europe later, so the
/// early history is US only.
pub(crate) const MARKET_LAUNCH_YEARS: [f64; 3] = [0.0, 3.0, 4.5];
pub(crate) const ACCOUNTS: [&str; 3] = ["NorthPeak US", "NorthPeak EU", "NorthPeak Outlet"];
const OUTLET: u8 = 2;
pub(crate) const NO_PARENT: u32 = u32::MAX;
/// Zipf exponent of family popularity: near 1 gives the familiar long tail
/// where a few per cent of the catalogue carries half of the units.
const ZIPF_S: f64 = 1.05;

/// Demand multiplier by month for seasonal products (none, summer, holiday).
pub(crate) const SEASON_FACTOR: [[f64; 12]; 3] = [
    [1.0; 12],
    [
        0.15, 0.15, 0.3, 0.6, 1.0, 1.0, 1.0, 0.9, 0.5, 0.2, 0.15, 0.15,
    ],
    [
        0.2, 0.15, 0.15, 0.15, 0.15, 0.15, 0.2, 0.2, 0.3, 0.5, 1.0, 1.0,
    ],
];

type Variant = (&'static str, &'static str, f64);

const COLOURS: [Variant; 10] = [
    ("Black", "BLACK", 1.6),
    ("Navy", "NAVY", 1.3),
    ("Grey", "GREY", 1.1),
    ("White", "WHITE", 1.0),
    ("Blue", "BLUE", 0.9),
    ("Red", "RED", 0.8),
    ("Green", "GREEN", 0.6),
    ("Pink", "PINK", 0.6),
    ("Beige", "BEIGE", 0.5),
    ("Olive", "OLIVE", 0.5),
];
/// (SKU code, title label, popularity); price steps live in `Axes`.
const CLOTHING_SIZES: [Variant; 4] = [
    ("S", "Small", 0.7),
    ("M", "Medium", 1.3),
    ("L", "Large", 1.1),
    ("XL", "X-Large", 0.6),
];
const PET_SIZES: [Variant; 3] = [
    ("S", "Small", 1.0),
    ("M", "Medium", 1.2),
    ("L", "Large", 0.8),
];
const VOLUMES: [Variant; 3] = [
    ("50ML", "50 ml", 0.8),
    ("100ML", "100 ml", 1.3),
    ("250ML", "250 ml", 0.7),
];

#[derive(Clone, Copy)]
enum Axes {
    ColourSize(&'static [Variant], &'static [f64]),
    Colour,
    Size(&'static [Variant], &'static [f64]),
}

struct Sub {
    /// `None`: products classified at department level only, so the
    /// category is the bare department name (`Socks`). Categories are
    /// `Department > Sub` paths otherwise, which is what makes both
    /// `category = 'Socks'` and `category STARTS WITH 'Home'` useful.
    name: Option<&'static str>,
    code: &'static str,
    nouns: &'static [&'static str],
    /// Probabilities of being a summer / holiday item.
    season: (f64, f64),
}

pub(crate) struct Dept {
    name: &'static str,
    subs: &'static [Sub],
    adjectives: &'static [&'static str],
    brands: &'static [&'static str],
    /// List price range in dollars (drawn log-uniformly).
    price: (f64, f64),
    axes: Axes,
    /// Share of families that are a single product with no variations.
    standalone: f64,
    pub share: f64,
    /// Consumables are bought again and again by the same customer.
    pub repeat: bool,
    /// Marketplace referral fee in basis points of revenue.
    pub fee_bp: i64,
    /// Sales rank of a product selling about one unit a day.
    pub bsr_scale: f64,
}

const fn sub(
    name: Option<&'static str>,
    code: &'static str,
    nouns: &'static [&'static str],
) -> Sub {
    Sub {
        name,
        code,
        nouns,
        season: (0.0, 0.0),
    }
}

pub(crate) const DEPTS: [Dept; 8] = [
    Dept {
        name: "Socks",
        subs: &[
            sub(
                None,
                "SOCK",
                &[
                    "Crew Socks",
                    "Ankle Socks",
                    "No-Show Socks",
                    "Dress Socks",
                    "Socks 3-Pack",
                    "Socks 6-Pack",
                ],
            ),
            sub(
                Some("Hiking"),
                "HIKE",
                &["Hiking Socks", "Boot Socks", "Trail Socks"],
            ),
            sub(
                Some("Running"),
                "RUNS",
                &["Running Socks", "Low-Cut Running Socks"],
            ),
            sub(
                Some("Compression"),
                "COMP",
                &["Compression Socks", "Travel Compression Socks"],
            ),
        ],
        adjectives: &[
            "Everyday",
            "Merino Wool",
            "Bamboo",
            "Cushioned",
            "Thermal",
            "Lightweight",
            "Organic Cotton",
        ],
        brands: &["NorthPeak", "Trailhead", "SoftStep"],
        price: (7.0, 26.0),
        axes: Axes::ColourSize(&CLOTHING_SIZES, &[1.0, 1.0, 1.0, 1.0]),
        standalone: 0.3,
        share: 0.22,
        repeat: true,
        fee_bp: 1500,
        bsr_scale: 9_000.0,
    },
    Dept {
        name: "Apparel",
        subs: &[
            sub(
                Some("T-Shirts"),
                "TEE",
                &["T-Shirt", "V-Neck Tee", "Long Sleeve Tee"],
            ),
            sub(
                Some("Hoodies"),
                "HOOD",
                &["Hoodie", "Zip Hoodie", "Fleece Pullover"],
            ),
            sub(
                Some("Hats"),
                "HAT",
                &["Beanie", "Baseball Cap", "Bucket Hat"],
            ),
            Sub {
                season: (0.8, 0.0),
                ..sub(Some("Swimwear"), "SWIM", &["Swim Trunks", "Rash Guard"])
            },
        ],
        adjectives: &[
            "Classic",
            "Heavyweight",
            "Slim Fit",
            "Organic Cotton",
            "Vintage",
            "Performance",
        ],
        brands: &["NorthPeak", "Urban Thread", "Trailhead"],
        price: (14.0, 70.0),
        axes: Axes::ColourSize(&CLOTHING_SIZES, &[1.0, 1.0, 1.0, 1.08]),
        standalone: 0.15,
        share: 0.18,
        repeat: false,
        fee_bp: 1700,
        bsr_scale: 25_000.0,
    },
    Dept {
        name: "Home",
        subs: &[
            sub(
                None,
                "HOME",
                &["Storage Basket", "Throw Blanket", "Door Mat"],
            ),
            sub(
                Some("Kitchen"),
                "KIT",
                &[
                    "10\" Non-Stick Frying Pan",
                    "12\" Cast Iron Skillet",
                    "Chef's Knife",
                    "Cutting Board",
                    "Measuring Cups Set",
                    "Coffee Grinder",
                ],
            ),
            sub(
                Some("Bath"),
                "BATH",
                &["Bath Towel Set", "Shower Curtain", "Bath Mat"],
            ),
            sub(
                Some("Bedding"),
                "BED",
                &["Sheet Set", "Duvet Cover", "Pillowcases, Set of 2"],
            ),
            Sub {
                season: (0.0, 0.6),
                ..sub(
                    Some("Decor"),
                    "DECO",
                    &[
                        "Scented Candle",
                        "Picture Frame",
                        "Holiday Wreath",
                        "String Lights",
                    ],
                )
            },
        ],
        adjectives: &["Premium", "Minimalist", "Rustic", "Everyday", "Eco"],
        brands: &["Acme", "Casa Verde", "Hearth & Co"],
        price: (9.0, 150.0),
        axes: Axes::Colour,
        standalone: 0.55,
        share: 0.20,
        repeat: false,
        fee_bp: 1500,
        bsr_scale: 40_000.0,
    },
    Dept {
        name: "Outdoors",
        subs: &[
            Sub {
                season: (0.7, 0.0),
                ..sub(
                    Some("Camping"),
                    "CAMP",
                    &[
                        "Camping Lantern",
                        "Sleeping Bag",
                        "Trekking Poles",
                        "Camp Chair",
                    ],
                )
            },
            Sub {
                season: (0.6, 0.0),
                ..sub(
                    Some("Cycling"),
                    "CYC",
                    &["Bike Light Set", "Cycling Gloves", "Water Bottle Cage"],
                )
            },
            Sub {
                season: (0.9, 0.0),
                ..sub(
                    Some("Water Sports"),
                    "H2O",
                    &["Dry Bag", "Snorkel Set", "Beach Towel"],
                )
            },
        ],
        adjectives: &["Ultralight", "Waterproof", "Compact", "Trail", "Expedition"],
        brands: &["Trailhead", "NorthPeak", "Zephyr Gear"],
        price: (15.0, 250.0),
        axes: Axes::Colour,
        standalone: 0.5,
        share: 0.09,
        repeat: false,
        fee_bp: 1500,
        bsr_scale: 30_000.0,
    },
    Dept {
        name: "Beauty",
        subs: &[
            sub(
                Some("Skin Care"),
                "SKIN",
                &["Face Serum", "Moisturizer", "Sunscreen SPF 50"],
            ),
            sub(
                Some("Hair Care"),
                "HAIR",
                &["Shampoo", "Conditioner", "Hair Oil"],
            ),
            sub(Some("Fragrance"), "FRAG", &["Eau de Parfum", "Body Mist"]),
        ],
        adjectives: &["Hydrating", "Vitamin C", "Unscented", "Argan", "Sensitive"],
        brands: &["Puremist", "Bloom Botanics"],
        price: (7.0, 60.0),
        axes: Axes::Size(&VOLUMES, &[1.0, 1.6, 2.8]),
        standalone: 0.5,
        share: 0.10,
        repeat: true,
        fee_bp: 1500,
        bsr_scale: 20_000.0,
    },
    Dept {
        name: "Toys & Games",
        subs: &[
            Sub {
                season: (0.0, 0.5),
                ..sub(
                    None,
                    "TOY",
                    &["Plush Bear", "Wooden Train Set", "Building Blocks"],
                )
            },
            Sub {
                season: (0.0, 0.4),
                ..sub(Some("Puzzles"), "PUZ", &["1000-Piece Puzzle", "3D Puzzle"])
            },
            Sub {
                season: (0.0, 0.5),
                ..sub(
                    Some("Board Games"),
                    "GAME",
                    &["Family Board Game", "Card Game"],
                )
            },
        ],
        adjectives: &["Classic", "Deluxe", "Mini", "Giant"],
        brands: &["Little Oak", "Acme"],
        price: (9.0, 80.0),
        axes: Axes::Colour,
        standalone: 1.0,
        share: 0.07,
        repeat: false,
        fee_bp: 1500,
        bsr_scale: 35_000.0,
    },
    Dept {
        name: "Pet Supplies",
        subs: &[
            sub(
                Some("Dogs"),
                "DOG",
                &["Dog Leash", "Chew Toy", "Dog Bed", "Dog Treats"],
            ),
            sub(
                Some("Cats"),
                "CAT",
                &["Cat Scratcher", "Cat Toy Set", "Litter Mat", "Cat Treats"],
            ),
        ],
        adjectives: &["Durable", "Natural", "Cozy", "Reflective"],
        brands: &["Pawsome", "Acme"],
        price: (6.0, 60.0),
        axes: Axes::Size(&PET_SIZES, &[1.0, 1.25, 1.5]),
        standalone: 0.5,
        share: 0.08,
        repeat: true,
        fee_bp: 1500,
        bsr_scale: 15_000.0,
    },
    Dept {
        name: "Electronics",
        subs: &[
            sub(
                Some("Accessories"),
                "ACC",
                &[
                    "USB-C Cable",
                    "Phone Stand",
                    "Wireless Charger",
                    "Power Bank",
                ],
            ),
            sub(
                Some("Audio"),
                "AUD",
                &["Wireless Earbuds", "Bluetooth Speaker"],
            ),
        ],
        adjectives: &["Fast-Charging", "Braided", "Portable", "Pro"],
        brands: &["Voltix", "Acme"],
        price: (9.0, 120.0),
        axes: Axes::Colour,
        standalone: 0.6,
        share: 0.06,
        repeat: false,
        fee_bp: 800,
        bsr_scale: 30_000.0,
    },
];

pub(crate) struct Product {
    pub sku: String,
    /// Index of the parent row, or `NO_PARENT`.
    pub parent: u32,
    /// A parent row: the variation family itself, never sold directly.
    pub is_parent: bool,
    pub asin: Option<[u8; 10]>,
    pub title: String,
    pub brand: &'static str,
    pub dept: u8,
    pub category: String,
    pub tags: String,
    pub account: u8,
    pub market: u8,
    pub price: Option<i64>,
    pub cost: Option<i64>,
    pub created: i64,
    /// Sales stop here: stock-out or a discontinued item that sold out.
    pub avail_to: i64,
    /// Not yet live: no title or ASIN finished, no traffic, no sales.
    pub draft: bool,
    pub discontinued: bool,
    /// Whether inventory is tracked; an untracked product has it empty.
    pub tracked: bool,
    pub season: u8,
    pub colour: Option<&'static str>,
    pub weight: f64,
}

impl Product {
    pub fn sellable(&self) -> bool {
        !self.is_parent && !self.draft
    }

    #[inline]
    pub fn available(&self, t: i64) -> bool {
        self.created <= t && t < self.avail_to
    }
}

pub(crate) struct Table {
    alias: Alias,
    ids: Vec<u32>,
}

impl Table {
    fn new(ids: Vec<u32>, products: &[Product]) -> Option<Table> {
        let weights: Vec<f64> = ids.iter().map(|&i| products[i as usize].weight).collect();
        Alias::new(&weights).map(|alias| Table { alias, ids })
    }

    #[inline]
    pub fn sample(&self, rng: &mut Rng) -> u32 {
        self.ids[self.alias.sample(rng)]
    }
}

pub(crate) struct Catalogue {
    pub products: Vec<Product>,
    /// When each marketplace opened (Unix seconds).
    pub launch: [i64; 3],
    /// Popularity tables per marketplace, and per marketplace and department.
    pub by_market: Vec<Option<Table>>,
    pub by_dept: Vec<Vec<Option<Table>>>,
    /// Products listed since each marketplace opened and never out of
    /// stock: what is sold when a draw finds nothing available yet.
    pub founding: [Vec<u32>; 3],
}

impl Catalogue {
    /// A product to sell in `market` at `t`: drawn by popularity, then
    /// thinned by availability and season; falls back to the founding
    /// range, which is always there.
    #[inline]
    pub fn pick(
        &self,
        rng: &mut Rng,
        market: usize,
        dept: Option<usize>,
        t: i64,
        month: usize,
    ) -> u32 {
        let table = match dept {
            Some(d) => self.by_dept[market][d]
                .as_ref()
                .or(self.by_market[market].as_ref()),
            None => self.by_market[market].as_ref(),
        };
        if let Some(table) = table {
            for _ in 0..12 {
                let id = table.sample(rng);
                if self.can_sell(rng, id, t, month) {
                    return id;
                }
            }
        }
        *rng.pick(&self.founding[market])
    }

    #[inline]
    pub fn can_sell(&self, rng: &mut Rng, id: u32, t: i64, month: usize) -> bool {
        let p = &self.products[id as usize];
        p.available(t) && (p.season == 0 || rng.chance(SEASON_FACTOR[p.season as usize][month]))
    }
}

#[derive(Clone, Copy)]
struct Family {
    market: u8,
    dept: usize,
    sub: usize,
    hero: bool,
    founding: bool,
    created: i64,
}

fn snap_price(cents: f64) -> i64 {
    let dollars = (cents / 100.0).round().max(1.0) as i64;
    dollars * 100 - 1
}

fn asin(rng: &mut Rng, used: &mut HashSet<[u8; 10]>) -> [u8; 10] {
    const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    loop {
        let mut a = *b"B000000000";
        for c in &mut a[2..] {
            *c = ALNUM[rng.below(36) as usize];
        }
        if used.insert(a) {
            return a;
        }
    }
}

/// Builds about `target` product rows (parents included) for a store that
/// opened at `founding` and is observed at `end`.
pub(crate) fn build(target: usize, founding: i64, end: i64, rng: &mut Rng) -> Catalogue {
    let launch = MARKET_LAUNCH_YEARS.map(|y| founding + (y * YEAR) as i64);
    let mut plan = Vec::new();
    // The store began as a sock shop: the first listings of every
    // marketplace are socks, classified at department level only.
    // They are listed a little before the marketplace opens, so that they
    // exist before the first order that may fall back on them.
    plan.push(Family {
        market: 0,
        dept: 0,
        sub: 0,
        hero: true,
        founding: true,
        created: launch[0] - 7 * DAY + 10 * 3600,
    });
    for (m, &at) in launch.iter().enumerate() {
        let n = if m == 0 { 1 } else { 2 };
        for _ in 0..n {
            let created = at - rng.int(DAY, 14 * DAY);
            plan.push(Family {
                market: m as u8,
                dept: 0,
                sub: 0,
                hero: false,
                founding: true,
                created,
            });
        }
    }

    let mut products: Vec<Product> = Vec::with_capacity(target);
    let mut family_rows: Vec<(usize, usize, u8, bool, bool)> = Vec::new(); // (start, end, market, founding, hero)
    let mut used_asins = HashSet::new();
    let mut sku_no = 1000u32;
    let dept_shares: Vec<f64> = DEPTS.iter().map(|d| d.share).collect();
    let mut planned = 0;
    while products.len() < target {
        let fam = if planned < plan.len() {
            planned += 1;
            plan[planned - 1]
        } else {
            let market = rng.weighted(&MARKET_SHARE) as u8;
            // The first family after the founding range is an Acme kitchen
            // item so that every catalogue, however small, has the brand.
            let first_regular = planned == plan.len();
            planned += 1;
            let dept = if first_regular {
                2
            } else {
                rng.weighted(&dept_shares)
            };
            let sub = if first_regular {
                1
            } else {
                rng.below(DEPTS[dept].subs.len() as u64) as usize
            };
            let from = launch[market as usize];
            let created = if rng.chance(0.07) {
                end - rng.int(DAY, 60 * DAY)
            } else {
                // Listings accumulate, faster lately.
                from + ((end - 60 * DAY - from).max(1) as f64 * rng.f64().powf(0.7)) as i64
            };
            Family {
                market: if first_regular { 0 } else { market },
                dept,
                sub,
                hero: false,
                founding: false,
                created,
            }
        };
        let start = products.len();
        sku_no += 1;
        add_family(
            &fam,
            sku_no,
            target - start,
            end,
            rng,
            &mut used_asins,
            &mut products,
            planned == plan.len() + 1,
        );
        family_rows.push((start, products.len(), fam.market, fam.founding, fam.hero));
    }

    // Popularity: Zipf over the families of each marketplace, the founding
    // range on top, then the family's weight split over its variations.
    for m in 0..3u8 {
        let mut fams: Vec<usize> = (0..family_rows.len())
            .filter(|&f| family_rows[f].2 == m)
            .collect();
        let (mut top, mut rest): (Vec<usize>, Vec<usize>) =
            fams.drain(..).partition(|&f| family_rows[f].3);
        top.sort_by_key(|&f| !family_rows[f].4);
        rng.shuffle(&mut rest);
        let bestsellers = (top.len() + rest.len()).div_ceil(33).max(3);
        for (rank, &f) in top.iter().chain(rest.iter()).enumerate() {
            let (start, stop, ..) = family_rows[f];
            let w = 1.0 / ((rank + 1) as f64).powf(ZIPF_S);
            let shares: f64 = products[start..stop]
                .iter()
                .filter(|p| p.sellable())
                .map(|p| p.weight)
                .sum();
            for p in &mut products[start..stop] {
                p.weight = if p.sellable() && shares > 0.0 {
                    w * p.weight / shares
                } else {
                    0.0
                };
                if rank < bestsellers && !p.draft {
                    add_tag(&mut p.tags, "bestseller");
                }
            }
        }
    }

    let mut by_market = Vec::new();
    let mut by_dept = Vec::new();
    let mut founding_ids: [Vec<u32>; 3] = Default::default();
    for (m, founding) in founding_ids.iter_mut().enumerate() {
        let ids: Vec<u32> = (0..products.len() as u32)
            .filter(|&i| {
                products[i as usize].market as usize == m && products[i as usize].weight > 0.0
            })
            .collect();
        by_dept.push(
            (0..DEPTS.len())
                .map(|d| {
                    let sub: Vec<u32> = ids
                        .iter()
                        .copied()
                        .filter(|&i| products[i as usize].dept as usize == d)
                        .collect();
                    Table::new(sub, &products)
                })
                .collect(),
        );
        by_market.push(Table::new(ids, &products));
        for &(start, stop, market, is_founding, _) in &family_rows {
            if is_founding && market as usize == m {
                founding.extend(
                    (start..stop)
                        .filter(|&i| products[i].sellable())
                        .map(|i| i as u32),
                );
            }
        }
    }
    Catalogue {
        products,
        launch,
        by_market,
        by_dept,
        founding: founding_ids,
    }
}

fn add_tag(tags: &mut String, tag: &str) {
    if tags.split(';').any(|t| t == tag) {
        return;
    }
    if !tags.is_empty() {
        tags.push(';');
    }
    tags.push_str(tag);
}

#[allow(clippy::too_many_arguments)]
fn add_family(
    fam: &Family,
    sku_no: u32,
    budget: usize,
    end: i64,
    rng: &mut Rng,
    used_asins: &mut HashSet<[u8; 10]>,
    products: &mut Vec<Product>,
    acme: bool,
) {
    let dept = &DEPTS[fam.dept];
    let sub = &dept.subs[fam.sub];
    let market = fam.market;
    let account = if !fam.founding && rng.chance(0.12) {
        OUTLET
    } else if market == 0 {
        0
    } else {
        1
    };
    let brand = if fam.hero || fam.founding {
        "NorthPeak"
    } else if acme {
        "Acme"
    } else {
        rng.pick(dept.brands)
    };
    let noun = if fam.hero {
        "Crew Socks"
    } else {
        rng.pick(sub.nouns)
    };
    let name = if fam.hero {
        "Everyday Cotton Crew Socks".to_string()
    } else if rng.chance(0.7) {
        format!("{} {}", rng.pick(dept.adjectives), noun)
    } else {
        noun.to_string()
    };
    let title = format!("{brand} {name}");
    let category = match sub.name {
        Some(s) => format!("{} > {}", dept.name, s),
        None => dept.name.to_string(),
    };
    let code = if fam.hero {
        "SOCK".to_string()
    } else {
        format!("{}-{}", sub.code, sku_no)
    };
    let season = {
        let r = rng.f64();
        if fam.founding {
            0
        } else if r < sub.season.0 {
            1
        } else if r < sub.season.0 + sub.season.1 {
            2
        } else if r < sub.season.0 + sub.season.1 + 0.03 {
            1 + rng.below(2) as u8
        } else {
            0
        }
    };
    let special = !fam.founding;
    let draft = special && rng.chance(0.02);
    let created = if draft {
        end - rng.int(DAY, 90 * DAY)
    } else {
        fam.created
    };
    let discontinued_at = (special && !draft && created < end - 400 * DAY && rng.chance(0.07))
        .then(|| end - rng.int(20 * DAY, 365 * DAY));
    let cost_missing = special && rng.chance(0.07);
    let base_price = {
        let (lo, hi) = dept.price;
        let dollars = (lo.ln() + (hi.ln() - lo.ln()) * rng.f64())
            .exp()
            .floor()
            .max(1.0) as i64;
        dollars * 100 + *rng.pick(&[99, 99, 99, 95, 49, 0])
    };
    let cost_ratio = rng.uniform(0.22, 0.5);

    let mut tags = String::new();
    if created >= end - 60 * DAY {
        add_tag(&mut tags, "new");
    }
    if account == OUTLET || discontinued_at.is_some() {
        add_tag(&mut tags, "clearance");
    }
    if season != 0 {
        add_tag(&mut tags, "seasonal");
    }
    if discontinued_at.is_some() {
        add_tag(&mut tags, "discontinued");
    }
    if season == 2 || rng.chance(0.04) {
        add_tag(&mut tags, "gift");
    }
    if rng.chance(0.08) {
        add_tag(&mut tags, "eco");
    }
    if noun.contains("Pack") || noun.contains("Set") {
        add_tag(&mut tags, "bundle");
    }

    // Variations: (sku suffix, title suffix, colour, popularity, price factor).
    let mut variants: Vec<(String, String, Option<&'static str>, f64, f64)> = Vec::new();
    let standalone = !fam.hero && (rng.chance(dept.standalone) || budget < 4);
    if !standalone {
        let pick_colours = |rng: &mut Rng, n: usize| -> Vec<Variant> {
            if fam.hero {
                return vec![
                    ("Red", "RED", 2.2),
                    ("Black", "BLACK", 1.6),
                    ("Blue", "BLUE", 1.0),
                    ("White", "WHITE", 0.9),
                ];
            }
            let mut c = COLOURS.to_vec();
            rng.shuffle(&mut c);
            c.truncate(n);
            c
        };
        match dept.axes {
            Axes::ColourSize(sizes, steps) => {
                let n_colours = 1 + rng.below(4) as usize;
                let colours = pick_colours(rng, n_colours);
                let n_sizes = if fam.hero {
                    3
                } else {
                    (2 + rng.below(3) as usize).min(sizes.len())
                };
                let first = if fam.hero {
                    0
                } else {
                    rng.below((sizes.len() - n_sizes) as u64 + 1) as usize
                };
                for c in &colours {
                    for (s, step) in sizes.iter().zip(steps).skip(first).take(n_sizes) {
                        variants.push((
                            format!("{}-{}", c.1, s.0),
                            format!("{}, {}", c.0, s.1),
                            Some(c.0),
                            c.2 * s.2,
                            *step,
                        ));
                    }
                }
                if variants.len() < 2 {
                    // One colour and one size: not a family.
                    variants.clear();
                }
            }
            Axes::Colour => {
                let n = 2 + rng.below(4) as usize;
                for c in pick_colours(rng, n) {
                    variants.push((c.1.to_string(), c.0.to_string(), Some(c.0), c.2, 1.0));
                }
            }
            Axes::Size(sizes, steps) => {
                for (s, step) in sizes.iter().zip(steps) {
                    variants.push((s.0.to_string(), s.1.to_string(), None, s.2, *step));
                }
            }
        }
        variants.truncate(budget.saturating_sub(1));
        if variants.len() < 2 {
            variants.clear();
        }
    }

    let make = |rng: &mut Rng,
                used: &mut HashSet<[u8; 10]>,
                sku: String,
                title: String,
                colour: Option<&'static str>,
                weight: f64,
                factor: f64,
                parent: u32| {
        let is_parent = factor == 0.0;
        let price = (!is_parent).then(|| {
            if factor == 1.0 {
                base_price
            } else {
                snap_price(base_price as f64 * factor)
            }
        });
        let created = if is_parent {
            created
        } else {
            created + rng.int(0, 3 * 3600)
        };
        let mut avail_to = i64::MAX;
        if let Some(at) = discontinued_at {
            let sold_out = at + rng.exp(60.0 * DAY as f64) as i64;
            if sold_out < end {
                avail_to = sold_out;
            }
        } else if special && !is_parent && !draft && rng.chance(0.06) {
            let out = end - rng.int(DAY / 2, 20 * DAY);
            if out > created + 2 * DAY {
                avail_to = out;
            }
        }
        let has_asin = !draft && (!special || rng.chance(0.98));
        Product {
            sku,
            parent,
            is_parent,
            asin: has_asin.then(|| asin(rng, used)),
            title: if (draft && rng.chance(0.5)) || (special && !is_parent && rng.chance(0.03)) {
                String::new()
            } else {
                title
            },
            brand,
            dept: fam.dept as u8,
            category: category.clone(),
            tags: tags.clone(),
            account,
            market,
            price,
            cost: price
                .filter(|_| !cost_missing)
                .map(|p| (p as f64 * cost_ratio).round() as i64),
            created,
            avail_to,
            draft,
            discontinued: discontinued_at.is_some(),
            tracked: !special || is_parent || rng.chance(0.96),
            season,
            colour,
            weight,
        }
    };

    if variants.is_empty() {
        let colour =
            (!matches!(dept.axes, Axes::Size(..)) && rng.chance(0.4)).then(|| rng.pick(&COLOURS).0);
        let p = make(rng, used_asins, code, title, colour, 1.0, 1.0, NO_PARENT);
        products.push(p);
    } else {
        let parent = products.len() as u32;
        let p = make(
            rng,
            used_asins,
            code.clone(),
            title.clone(),
            None,
            0.0,
            0.0,
            NO_PARENT,
        );
        products.push(p);
        for (suffix, label, colour, weight, factor) in variants {
            let w = weight * rng.lognormal(1.0, 0.3);
            let p = make(
                rng,
                used_asins,
                format!("{code}-{suffix}"),
                format!("{title}, {label}"),
                colour,
                w,
                factor,
                parent,
            );
            products.push(p);
        }
    }
}

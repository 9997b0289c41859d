//! `relay sample`: realistic Lambda DynamoDB Streams events of payment orders.
//!
//! [`generate`] plays a table's history: orders are created (`INSERT`, 30 %),
//! changed one to three fields at a time (`MODIFY`, 60 %; mostly status
//! transitions, also quantities, addresses, tags...) and deleted (`REMOVE`,
//! 10 %; one in five by TTL). Every record carries both images as a
//! `NEW_AND_OLD_IMAGES` stream would, and a `MODIFY`'s old image is exactly
//! the item's previous new image. Items are about 2 KB of DynamoDB JSON and
//! use every attribute type: nested maps and lists, a 38-digit number,
//! decimals, string and number sets, base64 binary, `NULL`, booleans and
//! non-ASCII text.
//!
//! The output depends only on [`SampleOptions`]: the random numbers come from
//! a SplitMix64 generator defined here, not from a crate whose algorithm
//! could change with its version.

use serde_json::{json, Map, Value};

/// What [`generate`] produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleOptions {
    /// Number of stream records.
    pub count: usize,
    /// Seed of the random generator: the same options give the same output.
    pub seed: u64,
    /// Table name, used in `eventSourceARN`.
    pub table: String,
    /// AWS region, used in `awsRegion` and `eventSourceARN`.
    pub region: String,
    /// AWS account id, used in `eventSourceARN`.
    pub account: String,
}

impl Default for SampleOptions {
    fn default() -> Self {
        Self {
            count: 10,
            seed: 1,
            table: "orders".to_owned(),
            region: "eu-central-1".to_owned(),
            account: "123456789012".to_owned(),
        }
    }
}

/// A Lambda DynamoDB Streams event, `{"Records": [...]}`, with
/// `opts.count` records of the payment order table's history.
pub fn generate(opts: &SampleOptions) -> Value {
    let mut history = History::new(opts);
    let records: Vec<Value> = (0..opts.count).map(|_| history.next_record()).collect();
    json!({ "Records": records })
}

/// 2026-01-15T08:00:00Z, when the sample history starts.
const START_SECONDS: u64 = 1_768_464_000;

/// The stream label in the ARN: when the table's stream was enabled.
const STREAM_LABEL: &str = "2026-01-01T00:00:00.000";

/// SplitMix64 (Steele, Lea, Flood 2014): small, fast, and fixed forever.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `low..=high`.
    fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low + 1)
    }

    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }
}

/// Whether no status follows `status`.
fn is_final(status: &str) -> bool {
    matches!(status, "cancelled" | "refunded")
}

/// The next status of an order, or `None` when it is final.
fn next_status(rng: &mut Rng, status: &str) -> Option<&'static str> {
    Some(match status {
        "created" if rng.percent(80) => "authorized",
        "created" => "cancelled",
        "authorized" if rng.percent(88) => "paid",
        "authorized" => "cancelled",
        "paid" if rng.percent(92) => "shipped",
        "paid" => "refunded",
        "shipped" => "delivered",
        "delivered" => "refunded",
        _ => return None,
    })
}

const FIRST_NAMES: [&str; 14] = [
    "Anna",
    "Jürgen",
    "Zoë",
    "François",
    "Søren",
    "Małgorzata",
    "Lukas",
    "Mia",
    "Ólafur",
    "Chiara",
    "Mehmet",
    "Ines",
    "Yuki",
    "Björn",
];
const LAST_NAMES: [&str; 12] = [
    "Müller",
    "Schmidt",
    "Dubois",
    "Nowak",
    "Jensen",
    "Rossi",
    "Yılmaz",
    "van der Berg",
    "Sato",
    "Lindqvist",
    "García",
    "O'Neill",
];
const STREETS: [&str; 10] = [
    "Hauptstraße",
    "Bahnhofstraße",
    "Schillerstraße",
    "Rue de Rivoli",
    "Keizersgracht",
    "Via Roma",
    "Gartenweg",
    "Lindenallee",
    "ulica Floriańska",
    "Strøget",
];
/// City, postcode, country.
const CITIES: [(&str, &str, &str); 12] = [
    ("Berlin", "10115", "DE"),
    ("München", "80331", "DE"),
    ("Köln", "50667", "DE"),
    ("Hamburg", "20095", "DE"),
    ("Wien", "1010", "AT"),
    ("Zürich", "8001", "CH"),
    ("Amsterdam", "1012 AB", "NL"),
    ("Paris", "75001", "FR"),
    ("Kraków", "31-001", "PL"),
    ("København", "1050", "DK"),
    ("Milano", "20121", "IT"),
    ("Göteborg", "411 03", "SE"),
];
/// SKU, name, unit price in cents, weight in grams.
const PRODUCTS: [(&str, &str, u64, u64); 12] = [
    ("SKU-10234", "Trail running shoe, size 43", 12_999, 780),
    ("SKU-20411", "Merino T-shirt – navy / M", 4_995, 180),
    ("SKU-30057", "Rain jacket „Nordwind“", 18_900, 640),
    ("SKU-41120", "Socks, 3-pack", 1_499, 120),
    ("SKU-52001", "Leather belt 95 cm", 3_950, 210),
    ("SKU-60310", "Backpack 22 l", 8_900, 900),
    ("SKU-71544", "Sunglasses, polarized", 6_900, 60),
    ("SKU-80009", "Gift card 50 €", 5_000, 5),
    ("SKU-90417", "Chino slim fit W32/L34", 5_995, 450),
    ("SKU-11873", "Wool scarf ✦ limited", 3_499, 230),
    ("SKU-12045", "Cap – 東京 edition", 2_999, 90),
    ("SKU-13370", "Water bottle 0.75 l", 1_995, 310),
];
const TAGS: [&str; 12] = [
    "vip",
    "first-order",
    "gift",
    "fragile",
    "b2b",
    "newsletter",
    "priority",
    "eco-packaging",
    "marketplace",
    "app",
    "web",
    "mobile",
];
const COUPONS: [&str; 6] = [
    "WELCOME10",
    "SPRING26",
    "FREESHIP",
    "VIP-5",
    "BIRTHDAY15",
    "APP-ONLY",
];
const NOTES: [&str; 9] = [
    "Bitte beim Nachbarn abgeben, falls niemand öffnet.",
    "Livraison après 18 h, s'il vous plaît.",
    "Leave at the door 📦🚪",
    "请在工作日送货。",
    "Geschenkverpackung gewünscht 🎁",
    "Klingel defekt – bitte anrufen.",
    "配達前に電話してください",
    "Ring twice 🔔🔔, dog is friendly 🐕",
    "Tür \"B\", 3. OG\tlinks",
];
const GIFT_MESSAGES: [&str; 4] = [
    "Alles Gute zum Geburtstag! 🎂",
    "Joyeux Noël ❄️",
    "Congratulations on the new job!",
    "お誕生日おめでとう 🎉",
];
const PAYMENT_METHODS: [&str; 4] = ["card", "paypal", "invoice", "sepa_debit"];
const CARD_BRANDS: [&str; 3] = ["visa", "mastercard", "amex"];
const CANCEL_REASONS: [&str; 3] = ["customer_request", "payment_failed", "out_of_stock"];

#[derive(Clone)]
struct Address {
    name: String,
    street: String,
    city: &'static str,
    zip: &'static str,
    country: &'static str,
}

#[derive(Clone)]
struct LineItem {
    sku: &'static str,
    name: &'static str,
    quantity: u64,
    unit_price_cents: u64,
    weight_grams: u64,
}

#[derive(Clone)]
struct Order {
    order_number: String,
    status: &'static str,
    customer_id: String,
    customer_email: String,
    currency: &'static str,
    shipping: Address,
    payment_method: &'static str,
    card: Option<(&'static str, String)>,
    billing_address: Option<Address>,
    vat_id: Option<String>,
    items: Vec<LineItem>,
    ledger_sequence: u128,
    tags: Vec<&'static str>,
    coupon_codes: Vec<&'static str>,
    signature: String,
    gift_message: Option<&'static str>,
    express: bool,
    version: u64,
    created_at: String,
    updated_at: String,
    notes: &'static str,
    tracking_number: Option<String>,
    cancellation_reason: Option<&'static str>,
    expires_at: u64,
}

/// What a `MODIFY` can change, with its weight.
#[derive(Clone, Copy, PartialEq)]
enum Change {
    Status,
    Quantity,
    Address,
    Tags,
    Express,
    GiftMessage,
    Notes,
    Coupon,
}

const CHANGES: [(Change, u64); 8] = [
    (Change::Status, 50),
    (Change::Quantity, 14),
    (Change::Address, 9),
    (Change::Tags, 10),
    (Change::Express, 4),
    (Change::GiftMessage, 4),
    (Change::Notes, 5),
    (Change::Coupon, 4),
];

struct History {
    rng: Rng,
    /// Items that exist, with their current image.
    live: Vec<Order>,
    next_order: u64,
    sequence: u128,
    /// Milliseconds since the epoch of the latest record.
    now_ms: u64,
    arn: String,
    region: String,
}

impl History {
    fn new(opts: &SampleOptions) -> Self {
        let mut rng = Rng(opts.seed);
        let next_order = rng.range(100, 9_000);
        let sequence = 490_000_000_000_000_000_000 + u128::from(rng.below(1_000_000_000)) * 1_000;
        Self {
            rng,
            live: Vec::new(),
            next_order,
            sequence,
            now_ms: START_SECONDS * 1_000,
            arn: format!(
                "arn:aws:dynamodb:{}:{}:table/{}/stream/{STREAM_LABEL}",
                opts.region, opts.account, opts.table
            ),
            region: opts.region.clone(),
        }
    }

    fn next_record(&mut self) -> Value {
        // Whole seconds in the record, as Lambda delivers them; the item's
        // timestamps carry milliseconds.
        self.now_ms = (self.now_ms / 1_000 + self.rng.range(1, 3)) * 1_000 + self.rng.below(1_000);
        self.sequence += u128::from(self.rng.range(1, 99_999));

        let roll = self.rng.below(100);
        let (event_name, old, new, ttl) = if self.live.is_empty() || roll < 30 {
            let order = self.new_order();
            self.live.push(order.clone());
            ("INSERT", None, Some(order), false)
        } else if roll < 90 {
            let at = self.rng.index(self.live.len());
            let old = self.live[at].clone();
            let new = self.modify(&old);
            self.live[at] = new.clone();
            ("MODIFY", Some(old), Some(new), false)
        } else {
            let at = self.rng.index(self.live.len());
            let old = self.live.swap_remove(at);
            let ttl = self.rng.percent(20);
            ("REMOVE", Some(old), None, ttl)
        };

        let either = new.as_ref().or(old.as_ref()).expect("an image");
        let keys = json!({ "order_number": av::s(either.order_number.as_str()) });
        let new_image = new.as_ref().map(item);
        let old_image = old.as_ref().map(item);
        let size = attributes_size(&keys)
            + new_image.as_ref().map_or(0, attributes_size)
            + old_image.as_ref().map_or(0, attributes_size);

        let mut dynamodb = Map::new();
        dynamodb.insert(
            "ApproximateCreationDateTime".into(),
            json!(self.now_ms / 1_000),
        );
        dynamodb.insert("Keys".into(), keys);
        if let Some(image) = new_image {
            dynamodb.insert("NewImage".into(), image);
        }
        if let Some(image) = old_image {
            dynamodb.insert("OldImage".into(), image);
        }
        dynamodb.insert("SequenceNumber".into(), json!(self.sequence.to_string()));
        dynamodb.insert("SizeBytes".into(), json!(size));
        dynamodb.insert("StreamViewType".into(), json!("NEW_AND_OLD_IMAGES"));

        let mut record = Map::new();
        record.insert("eventID".into(), json!(self.hex(32)));
        record.insert("eventName".into(), json!(event_name));
        record.insert("eventVersion".into(), json!("1.1"));
        record.insert("eventSource".into(), json!("aws:dynamodb"));
        record.insert("awsRegion".into(), json!(self.region));
        record.insert("dynamodb".into(), Value::Object(dynamodb));
        record.insert("eventSourceARN".into(), json!(self.arn));
        if ttl {
            record.insert(
                "userIdentity".into(),
                json!({ "type": "Service", "principalId": "dynamodb.amazonaws.com" }),
            );
        }
        Value::Object(record)
    }

    fn hex(&mut self, digits: usize) -> String {
        (0..digits)
            .map(|_| char::from_digit(self.rng.below(16) as u32, 16).unwrap_or('0'))
            .collect()
    }

    fn address(&mut self, name: String) -> Address {
        let (city, zip, country) = *self.rng.pick(&CITIES);
        Address {
            name,
            street: format!("{} {}", self.rng.pick(&STREETS), self.rng.range(1, 180)),
            city,
            zip,
            country,
        }
    }

    fn line_item(&mut self) -> LineItem {
        let (sku, name, unit_price_cents, weight_grams) = *self.rng.pick(&PRODUCTS);
        LineItem {
            sku,
            name,
            quantity: if self.rng.percent(70) {
                1
            } else {
                self.rng.range(2, 4)
            },
            unit_price_cents,
            weight_grams,
        }
    }

    fn new_order(&mut self) -> Order {
        let rng = &mut self.rng;
        let order_number = format!("ORD-{:06}", self.next_order);
        self.next_order += rng.range(1, 7);
        let first = *rng.pick(&FIRST_NAMES);
        let last = *rng.pick(&LAST_NAMES);
        let customer = rng.range(10_000, 99_999);
        let name = format!("{first} {last}");
        let email_user: String = format!("{first}.{last}")
            .to_lowercase()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' {
                    c
                } else {
                    'x'
                }
            })
            .collect();
        let payment_method = *rng.pick(&PAYMENT_METHODS);
        let card = (payment_method == "card")
            .then(|| (*rng.pick(&CARD_BRANDS), format!("{:04}", rng.below(10_000))));
        let vat_id = rng
            .percent(15)
            .then(|| format!("DE{:09}", rng.below(1_000_000_000)));
        let mut tags: Vec<&'static str> = (0..rng.range(1, 4)).map(|_| *rng.pick(&TAGS)).collect();
        tags.sort_unstable();
        tags.dedup();
        let mut coupon_codes: Vec<&'static str> = if rng.percent(40) {
            (0..rng.range(1, 2)).map(|_| *rng.pick(&COUPONS)).collect()
        } else {
            Vec::new()
        };
        coupon_codes.sort_unstable();
        coupon_codes.dedup();
        let signature_bytes: Vec<u8> = (0..48).map(|_| rng.below(256) as u8).collect();
        let gift_message = rng.percent(30).then(|| *rng.pick(&GIFT_MESSAGES));
        let express = rng.percent(25);
        let notes = *rng.pick(&NOTES);
        // 38 digits, far beyond u64: exact numbers must stay exact.
        let ledger_sequence = 10_u128.pow(37) * u128::from(rng.range(1, 8))
            + (u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64())) % 10_u128.pow(37);
        let separate_billing = rng.percent(20);

        let shipping = self.address(name.clone());
        let billing_address = separate_billing.then(|| self.address(name));
        let items = (0..self.rng.range(4, 7))
            .map(|_| self.line_item())
            .collect();
        let now = rfc3339(self.now_ms);
        Order {
            order_number,
            status: "created",
            customer_id: format!("CUST-{customer}"),
            customer_email: format!("{email_user}@example.com"),
            currency: "EUR",
            shipping,
            payment_method,
            card,
            billing_address,
            vat_id,
            items,
            ledger_sequence,
            tags,
            coupon_codes,
            signature: base64(&signature_bytes),
            gift_message,
            express,
            version: 1,
            created_at: now.clone(),
            updated_at: now,
            notes,
            tracking_number: None,
            cancellation_reason: None,
            expires_at: self.now_ms / 1_000 + 400 * 86_400,
        }
    }

    /// The order after one to three changes, with its version, ledger
    /// sequence and `updated_at` moved on.
    fn modify(&mut self, old: &Order) -> Order {
        let mut order = old.clone();
        let mut candidates: Vec<(Change, u64)> = CHANGES
            .iter()
            .copied()
            .filter(|(change, _)| *change != Change::Status || !is_final(order.status))
            .collect();
        let wanted = self.rng.range(1, 3);
        for _ in 0..wanted {
            let total: u64 = candidates.iter().map(|(_, w)| w).sum();
            let mut roll = self.rng.below(total);
            let at = candidates
                .iter()
                .position(|(_, w)| {
                    let hit = roll < *w;
                    roll = roll.saturating_sub(*w);
                    hit
                })
                .unwrap_or(0);
            let (change, _) = candidates.remove(at);
            self.apply(&mut order, change);
        }
        order.version += 1;
        order.ledger_sequence += u128::from(self.rng.range(1, 1_000));
        order.updated_at = rfc3339(self.now_ms);
        order
    }

    fn apply(&mut self, order: &mut Order, change: Change) {
        let rng = &mut self.rng;
        match change {
            Change::Status => {
                if let Some(status) = next_status(rng, order.status) {
                    order.status = status;
                    match status {
                        "shipped" => {
                            order.tracking_number =
                                Some(format!("00340434{:012}", rng.below(1_000_000_000_000)));
                        }
                        "cancelled" => order.cancellation_reason = Some(*rng.pick(&CANCEL_REASONS)),
                        _ => {}
                    }
                }
            }
            Change::Quantity => {
                if order.items.len() < 9 && rng.percent(30) {
                    let item = self.line_item();
                    order.items.push(item);
                } else {
                    let at = rng.index(order.items.len());
                    let item = &mut order.items[at];
                    item.quantity = if item.quantity == 1 {
                        rng.range(2, 5)
                    } else {
                        item.quantity - 1
                    };
                }
            }
            Change::Address => {
                if rng.percent(60) {
                    order.shipping.street = format!("{} {}", rng.pick(&STREETS), rng.range(1, 180));
                } else {
                    let name = order.shipping.name.clone();
                    order.shipping = self.address(name);
                }
            }
            Change::Tags => {
                let tag = *rng.pick(&TAGS);
                match order.tags.binary_search(&tag) {
                    Ok(at) if order.tags.len() > 1 => {
                        order.tags.remove(at);
                    }
                    Ok(_) => order.tags = vec![if tag == "vip" { "priority" } else { "vip" }],
                    Err(at) => order.tags.insert(at, tag),
                }
            }
            Change::Express => order.express = !order.express,
            Change::GiftMessage => {
                order.gift_message = match order.gift_message {
                    Some(_) => None,
                    None => Some(*rng.pick(&GIFT_MESSAGES)),
                }
            }
            Change::Notes => order.notes = *rng.pick(&NOTES),
            Change::Coupon => {
                if order.coupon_codes.is_empty() || rng.percent(50) {
                    let code = *rng.pick(&COUPONS);
                    if let Err(at) = order.coupon_codes.binary_search(&code) {
                        order.coupon_codes.insert(at, code);
                    }
                } else {
                    order.coupon_codes.clear();
                }
            }
        }
    }
}

use relay_record::dynamodb::av::{self, n};

fn s(text: &str) -> Value {
    av::s(text)
}

/// Cents as DynamoDB writes a decimal: no trailing zeros (`1250` → `12.5`).
fn money(cents: u64) -> String {
    let text = format!("{}.{:02}", cents / 100, cents % 100);
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn address_av(address: &Address) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), s(&address.name));
    m.insert("street".into(), s(&address.street));
    m.insert("city".into(), s(address.city));
    m.insert("zip".into(), s(address.zip));
    m.insert("country".into(), s(address.country));
    av::m(m)
}

/// The order as a DynamoDB item image.
fn item(order: &Order) -> Value {
    let subtotal: u64 = order
        .items
        .iter()
        .map(|i| i.quantity * i.unit_price_cents)
        .sum();
    let shipping_fee = match (order.express, subtotal >= 5_000) {
        (true, _) => 990,
        (false, true) => 0,
        (false, false) => 495,
    };
    let items: Vec<Value> = order
        .items
        .iter()
        .map(|i| {
            let mut m = Map::new();
            m.insert("sku".into(), s(i.sku));
            m.insert("name".into(), s(i.name));
            m.insert("quantity".into(), n(i.quantity.to_string()));
            m.insert("unit_price".into(), n(money(i.unit_price_cents)));
            m.insert("weight_kg".into(), n(money(i.weight_grams / 10)));
            av::m(m)
        })
        .collect();

    let mut billing = Map::new();
    billing.insert("method".into(), s(order.payment_method));
    if let Some((brand, last4)) = &order.card {
        billing.insert("card_brand".into(), s(brand));
        billing.insert("card_last4".into(), s(last4));
    }
    billing.insert(
        "same_as_shipping".into(),
        av::boolean(order.billing_address.is_none()),
    );
    if let Some(address) = &order.billing_address {
        billing.insert("address".into(), address_av(address));
    }
    billing.insert(
        "vat_id".into(),
        order.vat_id.as_deref().map_or_else(av::null, s),
    );

    let mut m = Map::new();
    m.insert("order_number".into(), s(&order.order_number));
    m.insert("status".into(), s(order.status));
    m.insert("customer_id".into(), s(&order.customer_id));
    m.insert("customer_email".into(), s(&order.customer_email));
    m.insert("currency".into(), s(order.currency));
    m.insert("shipping_address".into(), address_av(&order.shipping));
    m.insert("billing".into(), av::m(billing));
    m.insert("items".into(), av::l(items));
    m.insert(
        "line_numbers".into(),
        av::ns((1..=order.items.len()).map(|i| i.to_string()).collect()),
    );
    m.insert("shipping_fee".into(), n(money(shipping_fee)));
    m.insert("total_amount".into(), n(money(subtotal + shipping_fee)));
    m.insert(
        "ledger_sequence".into(),
        n(order.ledger_sequence.to_string()),
    );
    m.insert(
        "tags".into(),
        av::ss(order.tags.iter().map(|t| t.to_string()).collect()),
    );
    if !order.coupon_codes.is_empty() {
        m.insert(
            "coupon_codes".into(),
            av::ss(order.coupon_codes.iter().map(|c| c.to_string()).collect()),
        );
    }
    m.insert("signature".into(), av::b(order.signature.clone()));
    m.insert(
        "gift_message".into(),
        order.gift_message.map_or_else(av::null, s),
    );
    m.insert("express".into(), av::boolean(order.express));
    m.insert("version".into(), n(order.version.to_string()));
    m.insert("created_at".into(), s(&order.created_at));
    m.insert("updated_at".into(), s(&order.updated_at));
    m.insert("notes".into(), s(order.notes));
    if let Some(tracking) = &order.tracking_number {
        m.insert("tracking_number".into(), s(tracking));
    }
    if let Some(reason) = order.cancellation_reason {
        m.insert("cancellation_reason".into(), s(reason));
    }
    m.insert("expires_at".into(), n(order.expires_at.to_string()));
    Value::Object(m)
}

/// Approximately DynamoDB's size of an item (attribute names plus values),
/// for `SizeBytes`.
fn attributes_size(item: &Value) -> u64 {
    item.as_object().map_or(0, |m| {
        m.iter()
            .map(|(name, av)| name.len() as u64 + value_size(av))
            .sum()
    })
}

fn value_size(av: &Value) -> u64 {
    let Some((kind, inner)) = av.as_object().and_then(|m| m.iter().next()) else {
        return 0;
    };
    let text_len = |v: &Value| v.as_str().map_or(0, |t| t.len() as u64);
    let number_len = |v: &Value| v.as_str().map_or(0, |t| t.len() as u64 / 2 + 1);
    let binary_len = |v: &Value| {
        v.as_str().map_or(0, |t| {
            (t.len() as u64 / 4 * 3)
                .saturating_sub(t.bytes().rev().take_while(|&b| b == b'=').count() as u64)
        })
    };
    match kind.as_str() {
        "S" => text_len(inner),
        "N" => number_len(inner),
        "B" => binary_len(inner),
        "SS" => list(inner).iter().map(text_len).sum(),
        "NS" => list(inner).iter().map(number_len).sum(),
        "BS" => list(inner).iter().map(binary_len).sum(),
        "L" => 3 + list(inner).iter().map(|v| 1 + value_size(v)).sum::<u64>(),
        "M" => 3 + attributes_size(inner) + inner.as_object().map_or(0, |m| m.len() as u64),
        _ => 1,
    }
}

fn list(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or_default()
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Milliseconds since the epoch as RFC 3339 UTC, e.g. `2026-01-15T08:00:03.412Z`
/// (the format the SDK gives events' `occurred_at`).
fn rfc3339(ms: u64) -> String {
    relay_record::format_rfc3339_millis(ms)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use relay_record::dynamodb::{parse_record, table_from_arn};
    use relay_record::Operation;

    use super::*;

    fn sample(count: usize, seed: u64) -> Value {
        generate(&SampleOptions {
            count,
            seed,
            ..SampleOptions::default()
        })
    }

    fn records(event: &Value) -> &Vec<Value> {
        event["Records"].as_array().expect("Records")
    }

    #[test]
    fn same_seed_same_output() {
        let a = serde_json::to_string(&sample(200, 7)).unwrap();
        let b = serde_json::to_string(&sample(200, 7)).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn different_seed_different_output() {
        assert_ne!(sample(50, 7), sample(50, 8));
    }

    #[test]
    fn a_prefix_is_stable() {
        // More records extend the history; they do not change its start.
        let short = sample(20, 3);
        let long = sample(40, 3);
        assert_eq!(records(&short)[..], records(&long)[..20]);
    }

    #[test]
    fn zero_records() {
        assert_eq!(sample(0, 1), json!({ "Records": [] }));
    }

    #[test]
    fn operation_mix_is_about_30_60_10() {
        for seed in [1, 2, 99] {
            let event = sample(1_000, seed);
            let mut counts = HashMap::new();
            for r in records(&event) {
                *counts.entry(r["eventName"].as_str().unwrap()).or_insert(0) += 1;
            }
            let pct = |name| counts.get(name).copied().unwrap_or(0) as f64 / 10.0;
            assert!(
                (25.0..=35.0).contains(&pct("INSERT")),
                "seed {seed}: {counts:?}"
            );
            assert!(
                (55.0..=65.0).contains(&pct("MODIFY")),
                "seed {seed}: {counts:?}"
            );
            assert!(
                (5.0..=15.0).contains(&pct("REMOVE")),
                "seed {seed}: {counts:?}"
            );
        }
    }

    #[test]
    fn history_is_consistent_and_parses() {
        let event = sample(1_000, 42);
        let mut live: HashMap<String, Value> = HashMap::new();
        let mut last_sequence = 0_u128;
        let mut last_time = 0;
        let mut event_ids = std::collections::HashSet::new();
        let (mut removes, mut ttl, mut modified_fields) = (0, 0, 0);
        for raw in records(&event) {
            let record = parse_record(raw).unwrap_or_else(|e| panic!("{e}: {raw}"));
            assert_eq!(record.table, "orders");
            assert_eq!(table_from_arn(&record.event_source_arn), Some("orders"));
            assert_eq!(raw["awsRegion"], "eu-central-1");
            assert_eq!(raw["eventVersion"], "1.1");
            assert_eq!(raw["dynamodb"]["StreamViewType"], "NEW_AND_OLD_IMAGES");
            assert!(raw["dynamodb"]["SizeBytes"].as_u64().unwrap() > 100);
            assert!(
                event_ids.insert(record.event_id.clone()),
                "duplicate eventID"
            );

            let sequence: u128 = record.sequence_number.parse().unwrap();
            assert!(sequence > last_sequence);
            assert!((21..=22).contains(&record.sequence_number.len()));
            last_sequence = sequence;
            let time = record.approximate_creation_time_ms.unwrap();
            assert!(time > last_time && time >= START_SECONDS * 1_000);
            last_time = time;

            let image = record.item().unwrap();
            assert_eq!(image.json(), image.value().to_string(), "canonical text");
            let ledger = serde_json::to_string(&image["ledger_sequence"]).unwrap();
            assert_eq!(ledger.len(), 38, "{ledger}");
            let key = record.keys["order_number"].as_str().unwrap().to_owned();
            assert!(key.starts_with("ORD-") && key.len() == 10, "{key}");
            match record.operation {
                Operation::Insert => {
                    assert!(record.old_image.is_none());
                    let new = record.new_image.as_deref().unwrap().clone();
                    assert_eq!(new["status"], "created");
                    assert!(!is_final("created"));
                    assert!(live.insert(key, new).is_none(), "INSERT of a live item");
                }
                Operation::Modify => {
                    let old = record.old_image.as_deref().unwrap();
                    let new = record.new_image.as_deref().unwrap().clone();
                    assert_eq!(
                        Some(old),
                        live.get(&key),
                        "OldImage is not the last NewImage"
                    );
                    assert_ne!(old, &new);
                    assert_ne!(old["ledger_sequence"], new["ledger_sequence"]);
                    let changed = new
                        .as_object()
                        .unwrap()
                        .iter()
                        .filter(|(k, v)| old.get(k.as_str()) != Some(v))
                        .count();
                    modified_fields += changed;
                    live.insert(key, new);
                }
                Operation::Remove => {
                    assert!(record.new_image.is_none());
                    let old = live.remove(&key).expect("REMOVE of an unknown item");
                    assert_eq!(record.old_image.as_deref(), Some(&old));
                    removes += 1;
                    ttl += usize::from(record.ttl_delete);
                }
            }
        }
        assert!(
            ttl >= 1 && ttl * 10 < removes * 4,
            "{ttl} TTL deletes of {removes}"
        );
        assert!(modified_fields > 0);
    }

    #[test]
    fn values_use_every_type_and_exact_numbers() {
        let event = sample(30, 5);
        let text = serde_json::to_string(&event).unwrap();
        for needle in [
            r#"{"S":"#,
            r#"{"N":"#,
            r#"{"B":"#,
            r#"{"BOOL":"#,
            r#"{"NULL":true}"#,
            r#"{"M":"#,
            r#"{"L":"#,
            r#"{"SS":"#,
            r#"{"NS":"#,
        ] {
            assert!(text.contains(needle), "no {needle}");
        }
        let record = parse_record(&records(&event)[0]).unwrap();
        let image = record.new_image.unwrap();
        let raw_ledger = records(&event)[0]["dynamodb"]["NewImage"]["ledger_sequence"]["N"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(raw_ledger.len(), 38);
        assert_eq!(
            serde_json::to_string(&image["ledger_sequence"]).unwrap(),
            raw_ledger
        );
    }

    #[test]
    fn items_average_about_2_kb() {
        let event = sample(1_000, 11);
        let sizes: Vec<usize> = records(&event)
            .iter()
            .filter_map(|r| r["dynamodb"].get("NewImage"))
            .map(|image| serde_json::to_string(image).unwrap().len())
            .collect();
        let average = sizes.iter().sum::<usize>() / sizes.len();
        assert!(
            (1_700..=2_500).contains(&average),
            "average item {average} bytes"
        );
    }

    #[test]
    fn options_reach_the_arn() {
        let event = generate(&SampleOptions {
            count: 3,
            table: "payments".into(),
            region: "us-west-2".into(),
            account: "210987654321".into(),
            ..SampleOptions::default()
        });
        for r in records(&event) {
            assert_eq!(
                r["eventSourceARN"],
                "arn:aws:dynamodb:us-west-2:210987654321:table/payments/stream/2026-01-01T00:00:00.000"
            );
            assert_eq!(r["awsRegion"], "us-west-2");
        }
    }

    #[test]
    fn helpers() {
        assert_eq!(money(1250), "12.5");
        assert_eq!(money(1200), "12");
        assert_eq!(money(1299), "12.99");
        assert_eq!(money(5), "0.05");
        assert_eq!(money(0), "0");
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(&[0, 1, 42, 65]), "AAEqQQ==");
        assert_eq!(
            rfc3339(START_SECONDS * 1_000 + 412),
            "2026-01-15T08:00:00.412Z"
        );
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
    }
}

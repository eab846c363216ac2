//! Geospatial commands (Redis's geo.c): GEOADD, GEODIST, GEOHASH, GEOPOS, the GEORADIUS
//! family and GEOSEARCH/GEOSEARCHSTORE.
//!
//! A geo set is an ordinary sorted set whose scores are 52-bit geohashes (`db::geohash`
//! does the arithmetic). GEOADD is ZADD with computed scores, and is logged to the AOF and
//! replicas as that ZADD, as Redis does. Searches scan the score ranges of nine grid cells
//! around the centre and keep the members inside the area; arguments are checked in
//! Redis's order so the same bad request gets the same error.

use std::cmp::Ordering;

use super::flag::*;
use super::hash::long_double;
use super::{Args, CmdResult, CommandSpec, Ctx, Error, NOT_INT, SYNTAX};
use crate::config::notify;
use crate::db::Value;
use crate::db::geohash::{self, HashBits, Shape, ShapeKind};
use crate::db::zset::{ScoreRange, ZSetLimits, ZSetValue};
use crate::protocol::Reply;
use crate::state::OwnedArgs;
use crate::util::{parse_f64, parse_i64};

const G: &str = "geo";

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("geoadd", -5, WRITE | DENYOOM, (1, 1, 1), G, geoadd).doc("Add one or more geospatial items in the geospatial index represented using a sorted set", "3.2.0"),
    CommandSpec::new("geodist", -4, READONLY, (1, 1, 1), G, geodist).doc("Returns the distance between two members of a geospatial index", "3.2.0"),
    CommandSpec::new("geohash", -2, READONLY, (1, 1, 1), G, geohash).doc("Returns members of a geospatial index as standard geohash strings", "3.2.0"),
    CommandSpec::new("geopos", -2, READONLY, (1, 1, 1), G, geopos).doc("Returns longitude and latitude of members of a geospatial index", "3.2.0"),
    CommandSpec::new("georadius", -6, WRITE | DENYOOM | MOVABLE_KEYS, (1, 1, 1), G, georadius).doc("Query a sorted set representing a geospatial index to fetch members matching a given maximum distance from a point", "3.2.0"),
    CommandSpec::new("georadiusbymember", -5, WRITE | DENYOOM | MOVABLE_KEYS, (1, 1, 1), G, georadiusbymember).doc("Query a sorted set representing a geospatial index to fetch members matching a given maximum distance from a member", "3.2.0"),
    CommandSpec::new("georadius_ro", -6, READONLY, (1, 1, 1), G, georadius_ro).doc("A read-only variant for GEORADIUS", "3.2.10"),
    CommandSpec::new("georadiusbymember_ro", -5, READONLY, (1, 1, 1), G, georadiusbymember_ro).doc("A read-only variant for GEORADIUSBYMEMBER", "3.2.10"),
    CommandSpec::new("geosearch", -7, READONLY, (1, 1, 1), G, geosearch).doc("Query a sorted set representing a geospatial index to fetch members inside an area of a box or a circle.", "6.2.0"),
    CommandSpec::new("geosearchstore", -8, WRITE | DENYOOM, (1, 2, 1), G, geosearchstore).doc("Query a sorted set representing a geospatial index to fetch members inside an area of a box or a circle, and store the result in another key.", "6.2.0"),
];

/// Key positions of GEORADIUS and GEORADIUSBYMEMBER (COMMAND GETKEYS): the source key,
/// then the key after the first STORE and the first STOREDIST found from the first
/// option on, as Redis's keyword key specs find them. None for other commands.
pub fn movable_keys(spec: &CommandSpec, args: &Args) -> Option<Vec<usize>> {
    let first_option = match spec.name {
        "georadius" => 6,
        "georadiusbymember" => 5,
        _ => return None,
    };
    let mut keys = vec![1];
    for keyword in ["store", "storedist"] {
        // The keyword may not be the last argument: a key must follow it.
        let found = (first_option..args.len().saturating_sub(1)).find(|&i| args.is(i, keyword));
        if let Some(i) = found {
            keys.push(i + 1);
        }
    }
    Some(keys)
}

/// The key-spec flags COMMAND GETKEYSANDFLAGS reports for the key at `position` of a geo
/// command, where they differ from the command's own read/write flag.
pub fn key_flags(spec: &CommandSpec, position: usize) -> Option<&'static [&'static str]> {
    const SOURCE: &[&str] = &["RO", "access"];
    const DESTINATION: &[&str] = &["OW", "update"];
    match (spec.name, position) {
        ("georadius" | "georadiusbymember", 1) => Some(SOURCE),
        ("georadius" | "georadiusbymember", _) => Some(DESTINATION),
        ("geosearchstore", 1) => Some(DESTINATION),
        ("geosearchstore", _) => Some(SOURCE),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------
// Argument helpers
// ---------------------------------------------------------------------------------

/// Meters per unit; Redis's `extractUnitOrReply` (case-insensitive since 7.0).
fn parse_unit(arg: &[u8]) -> Result<f64, Error> {
    if arg.eq_ignore_ascii_case(b"m") {
        Ok(1.0)
    } else if arg.eq_ignore_ascii_case(b"km") {
        Ok(1000.0)
    } else if arg.eq_ignore_ascii_case(b"ft") {
        Ok(0.3048)
    } else if arg.eq_ignore_ascii_case(b"mi") {
        Ok(1609.34)
    } else {
        Err(Error::Msg(
            "ERR unsupported unit provided. please use M, KM, FT, MI",
        ))
    }
}

/// A longitude/latitude pair at `args[i]`, `args[i + 1]`, inside the indexable area.
fn parse_lon_lat(args: &Args, i: usize) -> Result<[f64; 2], Error> {
    let lon = args.f64(i)?;
    let lat = args.f64(i + 1)?;
    if !(geohash::LONG_MIN..=geohash::LONG_MAX).contains(&lon)
        || !(geohash::LAT_MIN..=geohash::LAT_MAX).contains(&lat)
    {
        return Err(Error::Owned(format!(
            "ERR invalid longitude,latitude pair {lon:.6},{lat:.6}"
        )));
    }
    Ok([lon, lat])
}

/// A number with its own error text (Redis's `getDoubleFromObjectOrReply` with a message).
fn parse_number(arg: &[u8], msg: &'static str) -> Result<f64, Error> {
    parse_f64(arg).ok_or(Error::Msg(msg))
}

/// `<radius> <unit>` at `args[i]`: (radius, meters per unit).
fn parse_distance(args: &Args, i: usize) -> Result<(f64, f64), Error> {
    let radius = parse_number(args.get(i), "ERR need numeric radius")?;
    if radius < 0.0 {
        return Err(Error::Msg("ERR radius cannot be negative"));
    }
    Ok((radius, parse_unit(args.get(i + 1))?))
}

/// `<width> <height> <unit>` at `args[i]`: (width, height, meters per unit).
fn parse_box(args: &Args, i: usize) -> Result<(f64, f64, f64), Error> {
    let width = parse_number(args.get(i), "ERR need numeric width")?;
    let height = parse_number(args.get(i + 1), "ERR need numeric height")?;
    if height < 0.0 || width < 0.0 {
        return Err(Error::Msg("ERR height or width cannot be negative"));
    }
    Ok((width, height, parse_unit(args.get(i + 2))?))
}

/// A distance as Redis replies it: a bulk string with four decimals, in any protocol.
fn reply_distance(out: &mut Reply, d: f64) {
    out.bulk(distance_text(d).as_bytes());
}

/// Four decimals as Redis's `fixedpoint_d2string` writes them: the value times 10^4
/// rounded to an integer half-to-even (`llrint`), which differs from printf's "%.4f" when
/// the multiplication itself rounds.
fn distance_text(d: f64) -> String {
    if d == 0.0 {
        return "0.0000".to_string();
    }
    let scaled = geohash::c_double_to_i64((d * 10000.0).round_ties_even());
    let sign = if scaled < 0 { "-" } else { "" };
    let v = scaled.unsigned_abs();
    format!("{sign}{}.{:04}", v / 10000, v % 10000)
}

/// A coordinate as Redis's `addReplyHumanLongDouble`: "%.17Lf" without trailing zeros,
/// a bulk string in RESP2 and a double in RESP3.
fn reply_coordinate(out: &mut Reply, v: f64) {
    let text = long_double::from_f64(v).map_or_else(|| v.to_string(), long_double::format_human);
    if out.resp3 {
        out.buf.push(b',');
        out.buf.extend_from_slice(text.as_bytes());
        out.buf.extend_from_slice(b"\r\n");
    } else {
        out.bulk(text.as_bytes());
    }
}

fn limits(ctx: &Ctx) -> ZSetLimits {
    let c = ctx.config();
    ZSetLimits {
        max_listpack_entries: c.zset_max_listpack_entries.max(0) as usize,
        max_listpack_value: c.zset_max_listpack_value.max(0) as usize,
    }
}

// ---------------------------------------------------------------------------------
// GEOADD
// ---------------------------------------------------------------------------------

/// GEOADD key [NX|XX] [CH] lon lat member ...: runs as `ZADD key [options] score member
/// ...` and is logged in that form.
fn geoadd(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let (mut nx, mut xx) = (false, false);
    let mut first = 2;
    while first < args.len() {
        if args.is(first, "nx") {
            nx = true;
        } else if args.is(first, "xx") {
            xx = true;
        } else if !args.is(first, "ch") {
            break;
        }
        first += 1;
    }
    if !(args.len() - first).is_multiple_of(3) || (xx && nx) {
        return Err(SYNTAX);
    }
    let elements = (args.len() - first) / 3;
    let mut zadd = OwnedArgs::from_slices(
        [&b"zadd"[..]]
            .into_iter()
            .chain(args.iter().take(first).skip(1)),
    );
    let mut digits = itoa::Buffer::new();
    for e in 0..elements {
        let at = first + 3 * e;
        let [lon, lat] = parse_lon_lat(args, at)?;
        // parse_lon_lat keeps the position inside the area encode accepts.
        let score = geohash::encode_score(lon, lat).unwrap_or(0);
        for part in [digits.format(score).as_bytes(), args.get(at + 2)] {
            let start = zadd.buf.len();
            zadd.buf.extend_from_slice(part);
            zadd.spans.push((start, zadd.buf.len()));
        }
    }
    let dirty_before = ctx.state.dirty;
    super::zset::zadd_generic(ctx, &Args::owned(&zadd), out, false)?;
    if ctx.state.dirty != dirty_before && ctx.feeding() {
        let parts: Vec<&[u8]> = Args::owned(&zadd).iter().collect();
        ctx.propagate(&parts);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// GEODIST GEOHASH GEOPOS
// ---------------------------------------------------------------------------------

fn geodist(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let to_meters = match args.len() {
        5 => parse_unit(args.get(4))?,
        n if n > 5 => return Err(SYNTAX),
        _ => 1.0,
    };
    let Some(z) = ctx.read_zset(args.get(1))? else {
        out.null();
        return Ok(());
    };
    match (z.score(args.get(2)), z.score(args.get(3))) {
        (Some(s1), Some(s2)) => {
            let [lon1, lat1] = geohash::decode_score(s1);
            let [lon2, lat2] = geohash::decode_score(s2);
            reply_distance(out, geohash::distance(lon1, lat1, lon2, lat2) / to_meters);
        }
        _ => out.null(),
    }
    Ok(())
}

fn geohash(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let z = ctx.read_zset(args.get(1))?;
    out.array(args.len() - 2);
    for member in args.iter().skip(2) {
        match z.and_then(|z| z.score(member)) {
            Some(score) => out.bulk(&geohash::standard_geohash(score)),
            None => out.null(),
        }
    }
    Ok(())
}

fn geopos(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    let z = ctx.read_zset(args.get(1))?;
    out.array(args.len() - 2);
    for member in args.iter().skip(2) {
        match z.and_then(|z| z.score(member)) {
            Some(score) => {
                let [lon, lat] = geohash::decode_score(score);
                out.array(2);
                reply_coordinate(out, lon);
                reply_coordinate(out, lat);
            }
            None => out.null_array(),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// GEORADIUS, GEORADIUSBYMEMBER, their _RO forms, GEOSEARCH, GEOSEARCHSTORE
// ---------------------------------------------------------------------------------

/// Which command of the search family runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Search {
    /// GEORADIUS[_RO]: centre and radius are fixed arguments.
    Coords,
    /// GEORADIUSBYMEMBER[_RO]: a member is the centre.
    Member,
    /// GEOSEARCH: FROMMEMBER/FROMLONLAT and BYRADIUS/BYBOX options.
    Options,
    /// GEOSEARCHSTORE: as GEOSEARCH, storing into `args[1]`.
    OptionsStore,
}

impl Search {
    fn is_geosearch(self) -> bool {
        matches!(self, Search::Options | Search::OptionsStore)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sort {
    None,
    Asc,
    Desc,
}

/// A member found inside the search area.
struct Point<'a> {
    member: &'a [u8],
    score: f64,
    lon: f64,
    lat: f64,
    /// Meters from the centre.
    dist: f64,
}

const MEMBER_NOT_FOUND: Error = Error::Msg("ERR could not decode requested zset member");

fn georadius(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    search_generic(ctx, args, out, 1, Search::Coords, true)
}

fn georadiusbymember(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    search_generic(ctx, args, out, 1, Search::Member, true)
}

fn georadius_ro(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    search_generic(ctx, args, out, 1, Search::Coords, false)
}

fn georadiusbymember_ro(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    search_generic(ctx, args, out, 1, Search::Member, false)
}

fn geosearch(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    search_generic(ctx, args, out, 1, Search::Options, false)
}

fn geosearchstore(ctx: &mut Ctx, args: &Args, out: &mut Reply) -> CmdResult {
    search_generic(ctx, args, out, 2, Search::OptionsStore, false)
}

/// Redis's `georadiusGeneric`. `src` is the index of the source key; `store_allowed`
/// says whether STORE/STOREDIST options are accepted (the GEORADIUS write forms).
fn search_generic(
    ctx: &mut Ctx,
    args: &Args,
    out: &mut Reply,
    src: usize,
    search: Search,
    store_allowed: bool,
) -> CmdResult {
    let limits = limits(ctx);
    let z = ctx.read_zset(args.get(src))?;
    let mut shape = Shape {
        xy: [0.0, 0.0],
        conversion: 0.0,
        kind: ShapeKind::Radius(0.0),
    };
    let mut store_key: Option<&[u8]> = None;
    let first_option = match search {
        Search::Coords => {
            shape.xy = parse_lon_lat(args, 2)?;
            let (radius, conversion) = parse_distance(args, 4)?;
            shape.kind = ShapeKind::Radius(radius);
            shape.conversion = conversion;
            6
        }
        Search::Member => {
            // Without a source key the member and radius are not even looked at.
            if let Some(z) = z {
                let score = z.score(args.get(2)).ok_or(MEMBER_NOT_FOUND)?;
                shape.xy = geohash::decode_score(score);
                let (radius, conversion) = parse_distance(args, 3)?;
                shape.kind = ShapeKind::Radius(radius);
                shape.conversion = conversion;
            }
            5
        }
        Search::Options => 2,
        Search::OptionsStore => {
            store_key = Some(args.get(1));
            3
        }
    };

    let (mut withdist, mut withhash, mut withcoords) = (false, false, false);
    let (mut from_member, mut from_lonlat, mut by_radius, mut by_box) =
        (false, false, false, false);
    let mut sort = Sort::None;
    let mut any = false;
    let mut count: i64 = 0;
    let mut store_dist = false;
    let geosearch = search.is_geosearch();
    let mut i = first_option;
    while i < args.len() {
        let has = |n: usize| i + n < args.len();
        if args.is(i, "withdist") {
            withdist = true;
        } else if args.is(i, "withhash") {
            withhash = true;
        } else if args.is(i, "withcoord") {
            withcoords = true;
        } else if args.is(i, "any") {
            any = true;
        } else if args.is(i, "asc") {
            sort = Sort::Asc;
        } else if args.is(i, "desc") {
            sort = Sort::Desc;
        } else if args.is(i, "count") && has(1) {
            count = parse_i64(args.get(i + 1)).ok_or(NOT_INT)?;
            if count <= 0 {
                return Err(Error::Msg("ERR COUNT must be > 0"));
            }
            i += 1;
        } else if (args.is(i, "store") || args.is(i, "storedist"))
            && has(1)
            && store_allowed
            && !geosearch
        {
            store_key = Some(args.get(i + 1));
            store_dist = args.is(i, "storedist");
            i += 1;
        } else if args.is(i, "storedist") && search == Search::OptionsStore {
            store_dist = true;
        } else if args.is(i, "frommember") && has(1) && geosearch && !from_lonlat {
            // Without a source key parsing goes on, to pick the right empty reply.
            if let Some(z) = z {
                let score = z.score(args.get(i + 1)).ok_or(MEMBER_NOT_FOUND)?;
                shape.xy = geohash::decode_score(score);
            }
            from_member = true;
            i += 1;
        } else if args.is(i, "fromlonlat") && has(2) && geosearch && !from_member {
            shape.xy = parse_lon_lat(args, i + 1)?;
            from_lonlat = true;
            i += 2;
        } else if args.is(i, "byradius") && has(2) && geosearch && !by_box {
            let (radius, conversion) = parse_distance(args, i + 1)?;
            shape.kind = ShapeKind::Radius(radius);
            shape.conversion = conversion;
            by_radius = true;
            i += 2;
        } else if args.is(i, "bybox") && has(3) && geosearch && !by_radius {
            let (width, height, conversion) = parse_box(args, i + 1)?;
            shape.kind = ShapeKind::Box { width, height };
            shape.conversion = conversion;
            by_box = true;
            i += 3;
        } else {
            return Err(SYNTAX);
        }
        i += 1;
    }

    if store_key.is_some() && (withdist || withhash || withcoords) {
        return Err(Error::Msg(if search == Search::OptionsStore {
            "ERR GEOSEARCHSTORE is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        } else {
            "ERR STORE option in GEORADIUS is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        }));
    }
    // Redis names the command as the client spelled it.
    let name = || String::from_utf8_lossy(args.get(0)).into_owned();
    if geosearch && !(from_member || from_lonlat) {
        return Err(Error::Owned(format!(
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {}",
            name()
        )));
    }
    if geosearch && !(by_radius || by_box) {
        return Err(Error::Owned(format!(
            "ERR exactly one of BYRADIUS and BYBOX can be specified for {}",
            name()
        )));
    }
    if any && count == 0 {
        return Err(Error::Msg("ERR the ANY argument requires COUNT argument"));
    }

    let Some(z) = z else {
        match store_key {
            Some(dst) => {
                if ctx.delete(dst) {
                    ctx.notify(notify::GENERIC, "del", dst);
                    ctx.dirty(1);
                }
                out.int(0);
            }
            None => out.array(0),
        }
        return Ok(());
    };

    // COUNT returns the closest N: without ANY it implies sorting.
    if count != 0 && sort == Sort::None && !any {
        sort = Sort::Asc;
    }
    let limit = if any { count as usize } else { 0 };
    let mut points = points_in_cells(z, &shape, limit);
    if points.is_empty() && store_key.is_none() {
        out.array(0);
        return Ok(());
    }
    let returned = if count == 0 {
        points.len()
    } else {
        points.len().min(count as usize)
    };
    if sort != Sort::None {
        let cmp = |a: &Point, b: &Point| {
            let o = a.dist.partial_cmp(&b.dist).unwrap_or(Ordering::Equal);
            if sort == Sort::Desc { o.reverse() } else { o }
        };
        if returned == points.len() {
            // glibc's qsort is a stable merge sort for elements this size.
            points.sort_by(cmp);
        } else if returned > 0 {
            partial_quicksort(&mut points, &cmp, returned - 1);
        }
    }
    let points = &points[..returned];

    let Some(dst) = store_key else {
        let options = withdist as usize + withhash as usize + withcoords as usize;
        out.array(returned);
        for p in points {
            if options > 0 {
                out.array(options + 1);
            }
            out.bulk(p.member);
            if withdist {
                reply_distance(out, p.dist / shape.conversion);
            }
            if withhash {
                out.int(geohash::c_double_to_i64(p.score));
            }
            if withcoords {
                out.array(2);
                reply_coordinate(out, p.lon);
                reply_coordinate(out, p.lat);
            }
        }
        return Ok(());
    };

    let stored = if returned > 0 {
        let max_len = points.iter().map(|p| p.member.len()).max().unwrap_or(0);
        let mut set = ZSetValue::with_hint(returned, max_len, limits);
        for p in points {
            let score = if store_dist {
                p.dist / shape.conversion
            } else {
                p.score
            };
            set.insert(p.member, score, limits);
        }
        Some(set)
    } else {
        None
    };
    match stored {
        Some(set) => {
            ctx.set_key(dst, Value::ZSet(set));
            let event = if search.is_geosearch() {
                "geosearchstore"
            } else {
                "georadiusstore"
            };
            ctx.notify(notify::ZSET, event, dst);
            ctx.dirty(returned as u64);
        }
        None => {
            if ctx.delete(dst) {
                ctx.notify(notify::GENERIC, "del", dst);
                ctx.dirty(1);
            }
        }
    }
    out.int(returned as i64);
    Ok(())
}

/// The members inside `shape`, from the nine cells around its centre in Redis's scan
/// order. With `limit` > 0 (ANY) the scan stops once that many are found.
fn points_in_cells<'a>(z: &'a ZSetValue, shape: &Shape, limit: usize) -> Vec<Point<'a>> {
    let cells = shape.search_cells().in_scan_order();
    let mut points = Vec::new();
    let mut last_processed = 0;
    for (i, cell) in cells.iter().enumerate() {
        if cell.is_zero() {
            continue;
        }
        // With huge radii neighbouring cells can be the same cell: scan it once. (As in
        // Redis, the centre cell itself is not compared.)
        if last_processed != 0 && *cell == cells[last_processed] {
            continue;
        }
        if !points.is_empty() && limit > 0 && points.len() >= limit {
            break;
        }
        points_in_cell(z, *cell, shape, limit, &mut points);
        last_processed = i;
    }
    points
}

fn points_in_cell<'a>(
    z: &'a ZSetValue,
    cell: HashBits,
    shape: &Shape,
    limit: usize,
    points: &mut Vec<Point<'a>>,
) {
    let (min, max) = cell.score_range();
    let range = ScoreRange {
        min: min as f64,
        max: max as f64,
        minex: false,
        maxex: true,
    };
    for (member, score) in z.range_by_score(&range, false, 0, None) {
        let [lon, lat] = geohash::decode_score(score);
        if let Some(dist) = shape.distance_if_inside(lon, lat) {
            points.push(Point {
                member,
                score,
                lon,
                lat,
                dist,
            });
        }
        if !points.is_empty() && limit > 0 && points.len() >= limit {
            break;
        }
    }
}

/// Redis's `pqsort` (Bentley & McIlroy's quicksort that only recurses into partitions
/// overlapping ranks 0..=`last`), used when COUNT keeps fewer than all results. Ported
/// step for step so that members at equal distances come out in Redis's order.
fn partial_quicksort<T>(v: &mut [T], cmp: &impl Fn(&T, &T) -> Ordering, last: usize) {
    let n = v.len();
    pqsort_part(v, cmp, 0, n, 0, last);
}

fn med3<T>(v: &[T], cmp: &impl Fn(&T, &T) -> Ordering, a: usize, b: usize, c: usize) -> usize {
    if cmp(&v[a], &v[b]) == Ordering::Less {
        if cmp(&v[b], &v[c]) == Ordering::Less {
            b
        } else if cmp(&v[a], &v[c]) == Ordering::Less {
            c
        } else {
            a
        }
    } else if cmp(&v[b], &v[c]) == Ordering::Greater {
        b
    } else if cmp(&v[a], &v[c]) == Ordering::Less {
        a
    } else {
        c
    }
}

/// Swaps `n` elements from `a` with `n` elements from `b`, pairwise.
fn vecswap<T>(v: &mut [T], a: usize, b: usize, n: usize) {
    for k in 0..n {
        v.swap(a + k, b + k);
    }
}

/// Sorts `v[start..start + n]` as far as ranks `lo..=hi` (absolute indices) need.
fn pqsort_part<T>(
    v: &mut [T],
    cmp: &impl Fn(&T, &T) -> Ordering,
    mut start: usize,
    mut n: usize,
    lo: usize,
    hi: usize,
) {
    let overlaps = |s: usize, len: usize| !(hi < s || lo >= s + len);
    loop {
        let a = start;
        if n < 7 {
            for pm in a + 1..a + n {
                let mut pl = pm;
                while pl > a && cmp(&v[pl - 1], &v[pl]) == Ordering::Greater {
                    v.swap(pl, pl - 1);
                    pl -= 1;
                }
            }
            return;
        }
        let mut pm = a + n / 2;
        if n > 7 {
            let mut pl = a;
            let mut pn = a + n - 1;
            if n > 40 {
                let d = n / 8;
                pl = med3(v, cmp, pl, pl + d, pl + 2 * d);
                pm = med3(v, cmp, pm - d, pm, pm + d);
                pn = med3(v, cmp, pn - 2 * d, pn - d, pn);
            }
            pm = med3(v, cmp, pl, pm, pn);
        }
        v.swap(a, pm);
        let (mut pa, mut pb) = (a + 1, a + 1);
        let (mut pc, mut pd) = (a + n - 1, a + n - 1);
        loop {
            while pb <= pc {
                let c = cmp(&v[pb], &v[a]);
                if c == Ordering::Greater {
                    break;
                }
                if c == Ordering::Equal {
                    v.swap(pa, pb);
                    pa += 1;
                }
                pb += 1;
            }
            while pb <= pc {
                let c = cmp(&v[pc], &v[a]);
                if c == Ordering::Less {
                    break;
                }
                if c == Ordering::Equal {
                    v.swap(pc, pd);
                    pd -= 1;
                }
                pc -= 1;
            }
            if pb > pc {
                break;
            }
            v.swap(pb, pc);
            pb += 1;
            pc -= 1;
        }
        let pn = a + n;
        let r = (pa - a).min(pb - pa);
        vecswap(v, a, pb - r, r);
        let r = (pd - pc).min(pn - pd - 1);
        vecswap(v, pb, pn - r, r);
        let r = pb - pa;
        if r > 1 && overlaps(a, r) {
            pqsort_part(v, cmp, a, r, lo, hi);
        }
        let r = pd - pc;
        if r > 1 {
            start = pn - r;
            n = r;
            if overlaps(start, n) {
                continue;
            }
        }
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_quicksort_orders_the_requested_prefix() {
        let cmp = |a: &u32, b: &u32| a.cmp(b);
        for len in [1usize, 5, 7, 8, 30, 41, 100, 257] {
            let data: Vec<u32> = (0..len as u32).map(|i| (i * 7919 + 13) % 101).collect();
            let mut sorted = data.clone();
            sorted.sort();
            for keep in [1, len / 3 + 1, len] {
                let mut v = data.clone();
                partial_quicksort(&mut v, &cmp, keep - 1);
                assert_eq!(v[..keep], sorted[..keep], "len {len} keep {keep}");
                let mut rest = v.clone();
                rest.sort();
                assert_eq!(rest, sorted);
            }
        }
    }

    #[test]
    fn distances_print_as_redis() {
        assert_eq!(distance_text(0.0), "0.0000");
        assert_eq!(distance_text(166274.15156960033), "166274.1516");
        assert_eq!(distance_text(0.00005), "0.0000");
        // The scaled value rounds (0.00015 * 10^4 is 1.4999999999999998), then ties go
        // to even; printf's "%.4f" would print 0.0003 for both of the last two.
        assert_eq!(distance_text(0.00015), "0.0001");
        assert_eq!(distance_text(0.00025), "0.0002");
        assert_eq!(distance_text(0.00035), "0.0004");
        assert_eq!(distance_text(12.5), "12.5000");
    }

    #[test]
    fn units() {
        assert_eq!(parse_unit(b"KM"), Ok(1000.0));
        assert_eq!(parse_unit(b"mi"), Ok(1609.34));
        assert!(parse_unit(b"yd").is_err());
    }
}

//! Log lines in Redis's format (`pid:M 22 Nov 2026 01:02:03.456 * message`), through
//! `log` + `env_logger`. The upstream test harness and people's log tooling read these.

use std::io::Write;

/// Maps Redis's `loglevel` to a `log` filter.
pub fn level_filter(loglevel: &str) -> log::LevelFilter {
    match loglevel {
        "debug" => log::LevelFilter::Trace,
        "verbose" => log::LevelFilter::Debug,
        "notice" => log::LevelFilter::Info,
        "warning" => log::LevelFilter::Warn,
        _ => log::LevelFilter::Off,
    }
}

/// Redis's level marks: `.` debug, `-` verbose, `*` notice, `#` warning.
fn mark(level: log::Level) -> char {
    match level {
        log::Level::Trace => '.',
        log::Level::Debug => '-',
        log::Level::Info => '*',
        log::Level::Warn | log::Level::Error => '#',
    }
}

/// "22 Nov 2026 01:02:03.456" (UTC) for a unix time in ms.
pub fn timestamp(ms: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{:02} {} {} {:02}:{:02}:{:02}.{:03}",
        day,
        MONTHS[(month - 1) as usize],
        year,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

/// Installs the logger. `logfile` empty means stdout, as in Redis.
pub fn init(loglevel: &str, logfile: &str) -> Result<(), String> {
    let target: Box<dyn Write + Send> = if logfile.is_empty() {
        Box::new(std::io::stdout())
    } else {
        Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(logfile)
                .map_err(|e| format!("Can't open the log file: {e}"))?,
        )
    };
    let pid = std::process::id();
    env_logger::Builder::new()
        .filter_level(level_filter(loglevel))
        .target(env_logger::Target::Pipe(target))
        .format(move |buf, record| {
            writeln!(
                buf,
                "{pid}:M {} {} {}",
                timestamp(crate::util::now_ms()),
                mark(record.level()),
                record.args()
            )
        })
        .try_init()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps() {
        assert_eq!(super::timestamp(0), "01 Jan 1970 00:00:00.000");
        assert_eq!(
            super::timestamp(1_795_309_323_456),
            "22 Nov 2026 01:02:03.456"
        );
    }
}

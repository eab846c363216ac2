//! A dataset of every type and encoding, and ways to compare two servers' contents,
//! shared by the persistence tests (RDB and AOF).

pub fn populate(con: &mut redis::Connection) {
    let cmds: &[&[&str]] = &[
        &["SET", "str", "hello"],
        &["SET", "int", "12345"],
        &["SET", "long", &"x".repeat(300)],
        &["SET", "ttl", "v", "EX", "1000"],
        &["RPUSH", "list", "a", "b", "c", "1"],
        &["SADD", "intset", "1", "2", "3"],
        &["SADD", "set", "a", "b", "c"],
        &["HSET", "hash", "f1", "v1", "f2", "v2"],
        &["ZADD", "zset", "1.5", "a", "2", "b", "-3", "c"],
        &["SELECT", "3"],
        &["SET", "in3", "yes"],
        &["SELECT", "0"],
    ];
    for c in cmds {
        let _: redis::Value = redis::cmd(c[0]).arg(&c[1..]).query(con).unwrap();
    }
    for i in 0..300 {
        let _: () = redis::cmd("RPUSH")
            .arg("biglist")
            .arg(i)
            .query(con)
            .unwrap();
        let _: () = redis::cmd("HSET")
            .arg("bighash")
            .arg(format!("f{i}"))
            .arg("x".repeat(i % 80))
            .query(con)
            .unwrap();
        let _: () = redis::cmd("ZADD")
            .arg("bigzset")
            .arg(i)
            .arg(format!("m{i}"))
            .query(con)
            .unwrap();
        let _: () = redis::cmd("SADD")
            .arg("bigset")
            .arg(format!("s{i}"))
            .query(con)
            .unwrap();
    }
}

pub fn digest(con: &mut redis::Connection) -> String {
    redis::cmd("DEBUG").arg("DIGEST").query(con).unwrap()
}

/// A dump of every key's type and contents through ordinary commands, comparable
/// between rudis and redis-server.
pub fn contents(con: &mut redis::Connection) -> Vec<String> {
    let mut out = Vec::new();
    for db in [0, 3] {
        let _: () = redis::cmd("SELECT").arg(db).query(con).unwrap();
        let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query(con).unwrap();
        keys.sort();
        for k in keys {
            let t: String = redis::cmd("TYPE").arg(&k).query(con).unwrap();
            let v: redis::Value = match t.as_str() {
                "string" => redis::cmd("GET").arg(&k).query(con).unwrap(),
                "list" => redis::cmd("LRANGE")
                    .arg(&k)
                    .arg(0)
                    .arg(-1)
                    .query(con)
                    .unwrap(),
                "set" => redis::cmd("SORT")
                    .arg(&k)
                    .arg("ALPHA")
                    .query(con)
                    .unwrap_or(redis::Value::Nil),
                "hash" => redis::cmd("HGETALL").arg(&k).query(con).unwrap(),
                "zset" => redis::cmd("ZRANGE")
                    .arg(&k)
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES")
                    .query(con)
                    .unwrap(),
                _ => redis::Value::Nil,
            };
            let v = if t == "set" {
                let mut m: Vec<String> = redis::cmd("SMEMBERS").arg(&k).query(con).unwrap();
                m.sort();
                format!("{m:?}")
            } else if t == "hash" {
                let mut m: Vec<(String, String)> =
                    redis::cmd("HGETALL").arg(&k).query(con).unwrap();
                m.sort();
                format!("{m:?}")
            } else {
                format!("{v:?}")
            };
            let ttl: i64 = redis::cmd("TTL").arg(&k).query(con).unwrap();
            out.push(format!("{db} {k} {t} {v} ttl>0={}", ttl > 0));
        }
    }
    let _: () = redis::cmd("SELECT").arg(0).query(con).unwrap();
    out
}

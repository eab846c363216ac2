//! SORT / SORT_RO against the real redis-server, byte for byte.

mod common;

use common::{RealRedis, TestServer, assert_same_replies};

#[test]
fn sort_matches_redis() {
    let a = TestServer::start();
    let b = RealRedis::start(&[]);
    assert_same_replies(
        &a,
        &b,
        r#"
        RPUSH l 3 1 2 10 -5
        SORT l
        SORT l DESC
        SORT l ALPHA
        SORT l LIMIT 1 2
        SORT l LIMIT 10 2
        SORT l LIMIT -1 -1
        MSET w_3 30 w_1 10 w_2 20 w_10 5 w_-5 100
        SORT l BY w_*
        SORT l BY w_* DESC GET # GET w_*
        SORT l BY nosort
        HSET h_1 f a
        HSET h_2 f b
        SORT l BY w_* GET h_*->f
        SORT l STORE dst
        LRANGE dst 0 -1
        SORT nothere STORE dst
        EXISTS dst
        RPUSH words banana apple cherry
        SORT words
        SORT words ALPHA DESC
        SADD s 5 3 9
        SORT s
        ZADD z 1 c 2 a 3 b
        SORT z ALPHA
        SORT z BY nosort
        SORT z BY nosort DESC
        SET str x
        SORT str
        SORT l BOGUS
        SORT_RO l STORE x
        SORT_RO l DESC
        "#,
    );
}

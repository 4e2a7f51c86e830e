//! The v2 JSON fast path against the serde path: on every body both accept with the
//! same spans (and so the same OTLP bytes), or both reject (and the error is serde's).

use proptest::prelude::*;

use super::json_gen::Gen;
use super::realistic::realistic_v2_json;
use super::v2_json::{fast, parse, via_serde, zipkin_v2_json};
use super::{to_otlp, Rules, Span};

/// The serde path's spans (`None` for rejected bodies).
fn serde_spans(body: &[u8]) -> Option<Vec<Span<'_>>> {
    let spans: Vec<Option<Span<'_>>> = parse(body, |_, e| e).ok()?;
    Some(spans.into_iter().flatten().collect())
}

/// Both paths take `body` alike; returns whether it was accepted.
fn agree(body: &[u8]) -> bool {
    let fast = fast::spans(body);
    let serde = serde_spans(body);
    let show = || String::from_utf8_lossy(body).into_owned();
    match (&fast, &serde) {
        (Some(f), Some(s)) => {
            assert_eq!(format!("{f:?}"), format!("{s:?}"), "spans differ: {}", show());
            for rules in [Rules::V2, Rules::V2Typed] {
                let want = via_serde(body, rules).unwrap();
                assert_eq!(to_otlp(f, rules), want, "bytes differ: {}", show());
                assert_eq!(zipkin_v2_json(body, rules == Rules::V2Typed).unwrap(), want);
            }
            true
        }
        (None, None) => {
            let want = via_serde(body, Rules::V2).unwrap_err();
            assert_eq!(zipkin_v2_json(body, false).unwrap_err(), want, "{}", show());
            false
        }
        _ => panic!("fast {} but serde {}: {}", fast.is_some(), serde.is_some(), show()),
    }
}

#[test]
fn realistic_and_fixture_bodies_agree() {
    for seed in 1..4 {
        assert!(agree(realistic_v2_json(seed, 300).as_bytes()));
    }
}

#[test]
fn edge_cases_agree() {
    let id = r#""traceId":"5af7183fb1d4cf5f","id":"6b221d5bc9e6496c""#;
    let accepted = [
        "[]",
        " \t\r\n[ \n] \n",
        "[null]",
        "[null, {}]",
        "[{}]",
        "[[]]",
        // Array forms of spans, endpoints and annotations: fields in declaration order.
        r#"[["5af7183fb1d4cf5f", "6b221d5bc9e6496c", null, "n", "SERVER", 1, 2.5,
            ["svc", "1.2.3.4", "", 80], null, {"a": "b"}, [[3, "x"], {"value": "y"}]]]"#,
        // Escapes: \uXXXX, surrogate pairs, every short escape, in keys too.
        r#"[{"trace\u0049d": "5af7183fb1d4cf5\u0066", "id": "6b221d5bc9e6496c",
            "name": "caf\u00e9 \ud83d\ude00 \"q\" \\ \/ \b\f\n\r\t",
            "tags": {"k\u00e9y": "v\u0000", "\ud800\udc00": ""}}]"#,
        "[{\"name\": \"raw \u{e9}\u{1f600}\"}]",
        // Nulls for every optional field.
        r#"[{"parentId": null, "name": null, "kind": null, "timestamp": null,
            "duration": null, "localEndpoint": null, "remoteEndpoint": null, "tags": null,
            "annotations": null}]"#,
        r#"[{"localEndpoint": {"serviceName": null, "ipv4": null, "ipv6": null, "port": null},
            "annotations": [{"timestamp": null, "value": "v"}]}]"#,
        // Numbers: floats are floored, exponents, -0, huge values saturate.
        r#"[{"timestamp": 1.9, "duration": 1e3}, {"timestamp": -0, "duration": -0.0}]"#,
        r#"[{"timestamp": 1E+2, "duration": 25e-1}, {"timestamp": 0.0e999999999999}]"#,
        r#"[{"timestamp": 18446744073709551615, "duration": 18446744073709551616}]"#,
        r#"[{"timestamp": 123456789012345678901234567890, "duration": 1e300}]"#,
        r#"[{"timestamp": -1e-400, "duration": 9007199254740993}]"#,
        r#"[{"localEndpoint": {"port": 65535}, "remoteEndpoint": {"port": 0}}]"#,
        // Unknown fields of every type and depth, duplicate unknown keys.
        r#"[{"x": {"a": [1, -2.5e-3, true, false, null, "s\u0041", {}, []]}, "x": 1,
            "debug": true, "shared": false, "y": [[[[{"z": [[]]}]]]]}]"#,
        // Duplicate tag keys are all kept, in order.
        r#"[{"tags": {"a": "1", "a": "2", "b": "", "a": "3"}}]"#,
        // Kinds.
        r#"[{"kind": "CLIENT"}, {"kind": "PRODUCER"}, {"kind": "CONSUMER"}, {"kind": "x"}]"#,
    ];
    for body in accepted {
        assert!(agree(body.as_bytes()), "{body}");
        // After a plain span, too.
        if let Some(rest) = body.strip_prefix('[').filter(|r| !r.trim_start().starts_with(']')) {
            assert!(agree(format!("[{{{id}}},{rest}").as_bytes()), "{body}");
        }
    }
    let rejected = [
        "",
        " ",
        "{}",
        "[",
        "[,]",
        "[{},]",
        "[{}] x",
        "[{}]]",
        "[1]",
        "[true]",
        "[\"s\"]",
        "[nul]",
        "[{,}]",
        "[{\"a\" 1}]",
        "[{\"a\": 1,}]",
        "[{1: 2}]",
        // Duplicate known fields (serde rejects them, in every struct).
        r#"[{"name": "a", "name": "b"}]"#,
        r#"[{"tags": {}, "tags": {}}]"#,
        r#"[{"localEndpoint": {"port": 1, "port": 2}}]"#,
        r#"[{"annotations": [{"value": "a", "value": "b"}]}]"#,
        // Wrong types.
        r#"[{"traceId": null}]"#,
        r#"[{"traceId": 5}]"#,
        r#"[{"id": ["x"]}]"#,
        r#"[{"tags": {"a": 1}}]"#,
        r#"[{"tags": {"a": null}}]"#,
        r#"[{"tags": {"a": true}}]"#,
        r#"[{"tags": {"a": {}}}]"#,
        r#"[{"tags": ["a"]}]"#,
        r#"[{"tags": "a"}]"#,
        r#"[{"timestamp": "1"}]"#,
        r#"[{"timestamp": -1}]"#,
        r#"[{"timestamp": -0.5}]"#,
        r#"[{"timestamp": 1e400}]"#,
        r#"[{"timestamp": 01}]"#,
        r#"[{"timestamp": 1.}]"#,
        r#"[{"timestamp": .5}]"#,
        r#"[{"timestamp": 1e}]"#,
        r#"[{"timestamp": +1}]"#,
        r#"[{"localEndpoint": {"port": 65536}}]"#,
        r#"[{"localEndpoint": {"port": -0}}]"#,
        r#"[{"localEndpoint": {"port": 80.0}}]"#,
        r#"[{"localEndpoint": {"port": 8e1}}]"#,
        r#"[{"localEndpoint": "x"}]"#,
        r#"[{"localEndpoint": ["a", "b", "c", 1, 2]}]"#,
        r#"[{"annotations": {}}]"#,
        r#"[{"annotations": [null]}]"#,
        r#"[{"annotations": [{"value": null}]}]"#,
        r#"[{"annotations": [[1, "a", 3]]}]"#,
        // A span array with a twelfth element.
        r#"[["a", "b", null, null, null, null, null, null, null, null, null, 1]]"#,
        // Strings: lone or reversed surrogates, bad escapes, raw control characters.
        r#"[{"name": "\ud800"}]"#,
        r#"[{"name": "\udc00\ud800"}]"#,
        r#"[{"name": "\ud800\u0041"}]"#,
        r#"[{"name": "\x"}]"#,
        r#"[{"name": "\u12"}]"#,
        "[{\"name\": \"a\tb\"}]",
        "[{\"x\": \"a\nb\"}]",
        r#"[{"x": "\q"}]"#,
        r#"[{"x": [1 2]}]"#,
        r#"[{"x": {"a": 1 "b": 2}}]"#,
        r#"[{"x": [}]}]"#,
        r#"[{"x": tru}]"#,
        r#"[{"x": -}]"#,
    ];
    for body in rejected {
        assert!(!agree(body.as_bytes()), "{body}");
    }
}

#[test]
fn invalid_utf8_is_checked_where_serde_checks_it() {
    // Skipped strings are not checked; read ones (keys included) are.
    assert!(agree(b"[{\"x\": \"\xff\", \"y\": {\"\xfe\": [\"\xc3\"]}}]"));
    assert!(agree(b"[{\"x\": \"\xff\", \"name\": \"\xc3\xa9\", \"tags\": {\"k\": \"v\"}}]"));
    assert!(!agree(b"[{\"name\": \"\xff\"}]"));
    assert!(!agree(b"[{\"\xff\": 1}]"));
    assert!(!agree(b"[{\"x\": \"\xff\", \"tags\": {\"k\": \"\xc3\"}}]"));
    assert!(!agree(b"[{\"x\": 1}, \xff]"));
}

#[test]
fn deep_unknown_values_are_skipped_without_recursion() {
    let deep = |n: usize| format!("[{{\"x\": {}1{}}}]", "[".repeat(n), "]".repeat(n));
    assert!(agree(deep(100_000).as_bytes()), "serde skips any depth");
    let objects = format!("[{{\"x\": {}1{}}}]", "{\"a\":".repeat(50_000), "}".repeat(50_000));
    assert!(agree(objects.as_bytes()));
    let unclosed = format!("[{{\"x\": {}", "[".repeat(100_000));
    assert!(!agree(unclosed.as_bytes()));
    let mismatched = format!("[{{\"x\": {}1{}}}}}]", "[".repeat(1000), "]".repeat(999));
    assert!(!agree(mismatched.as_bytes()));
}

#[test]
fn errors_are_serdes_messages() {
    for body in [r#"[{"tags": {"a": 1}}]"#, r#"[{"traceId": 5}]"#, "[{"] {
        let got = zipkin_v2_json(body.as_bytes(), false).unwrap_err();
        assert_eq!(got, via_serde(body.as_bytes(), Rules::V2).unwrap_err());
    }
    let e = zipkin_v2_json(br#"[{}, {"tags": {"a": 1}}]"#, false).unwrap_err();
    assert!(e.starts_with("[1].tags.a: invalid type: integer `1`, expected a string"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn generated_bodies_agree(seed in any::<u64>()) {
        let mut g = Gen(seed | 1);
        agree(g.body().as_bytes());
    }

    #[test]
    fn mutated_bodies_agree(seed in any::<u64>()) {
        let mut g = Gen(seed | 1);
        let body = g.body();
        agree(&g.mutate(body.as_bytes()));
    }

    #[test]
    fn mutated_realistic_bodies_agree(seed in any::<u64>()) {
        let mut g = Gen(seed | 1);
        let body = realistic_v2_json(seed, 5);
        agree(&g.mutate(body.as_bytes()));
    }

    #[test]
    fn random_json_values_agree(seed in any::<u64>()) {
        let mut g = Gen(seed | 1);
        agree(g.value(4).as_bytes());
        agree(format!("[{}]", g.value(4)).as_bytes());
        agree(format!("[{{\"tags\": {}, \"x\": {}}}]", g.value(2), g.value(4)).as_bytes());
    }

    #[test]
    fn numbers_agree(
        sign in any::<bool>(),
        int in "(0|[1-9][0-9]{0,30})",
        frac in proptest::option::of("[0-9]{1,25}"),
        exp in proptest::option::of((prop::sample::select(vec!["e", "E", "e+", "e-", "E-"]), 0..420u32)),
    ) {
        let mut n = format!("{}{int}", if sign { "-" } else { "" });
        if let Some(f) = frac {
            n = format!("{n}.{f}");
        }
        if let Some((e, x)) = exp {
            n = format!("{n}{e}{x}");
        }
        agree(format!("[{{\"timestamp\": {n}, \"duration\": {n}}}]").as_bytes());
        agree(format!("[{{\"localEndpoint\": {{\"port\": {n}}}}}]").as_bytes());
    }

    #[test]
    fn random_bytes_agree(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        agree(&bytes);
        let mut framed = b"[{\"name\": ".to_vec();
        framed.extend_from_slice(&bytes);
        agree(&framed);
    }
}

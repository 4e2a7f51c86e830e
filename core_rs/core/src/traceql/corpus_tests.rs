//! The TraceQL corpus.
//!
//! Queries come from Grafana Tempo's own parser corpus, `pkg/traceql/test_examples.yaml`
//! (sections `valid`, `parse_fails`, `validate_fails`, `unsupported`; a few entries moved
//! between sections where Tempo's current grammar changed them, e.g. bare `childCount` is no
//! longer an intrinsic and `nil` only appears as `x = nil` / `x != nil`), from the examples in
//! Tempo's TraceQL and TraceQL-metrics documentation, and from cases written here for
//! precedence, grouping, hints, metrics second stages and lexer edge cases. Error columns are
//! 1-based characters on line 1, at the token the parser stopped on.

use super::*;

/// Queries Tempo accepts: each parses, validates, and round-trips through its canonical form.
const VALID: &[&str] = &[
    // Tempo pkg/traceql/test_examples.yaml "valid" (current grammar), spanset filters
    r##"{ true }"##,
    r##"{ !true }"##,
    r##"{ true && false }"##,
    r##"{ true || false }"##,
    r##"{ 1 = 2 }"##,
    r##"{ 1 != 2 }"##,
    r##"{ 1 > 2 }"##,
    r##"{ 1 >= 2 }"##,
    r##"{ 1 < 2 }"##,
    r##"{ 1 <= 2 }"##,
    r##"{ -1 = 2 }"##,
    r##"{ "test" =~ "test" }"##,
    r##"{ "test" !~ "test" }"##,
    r##"{ "test" = "test" }"##,
    r##"{ "test" != "test" }"##,
    r##"{ .a }"##,
    r##"{ !.a }"##,
    r##"{ .a && false }"##,
    r##"{ .a || true }"##,
    r##"{ .a = 2 }"##,
    r##"{ .a != 2 }"##,
    r##"{ .a > 2 }"##,
    r##"{ .a >= 2 }"##,
    r##"{ .a < 2 }"##,
    r##"{ .a <= 2 }"##,
    r##"{ -.a = 2 }"##,
    r##"{ .a =~ "test" }"##,
    r##"{ .a !~ "test" }"##,
    r##"{ .a = "test" }"##,
    r##"{ .a != "test" }"##,
    r##"{ resource.a != 3 }"##,
    r##"{ span.a != 3 }"##,
    r##"{ !("test" != .c || ((true && .b) || 3 < .a)) }"##,
    r##"{ status = ok }"##,
    r##"{ status = unset }"##,
    r##"{ status = error }"##,
    r##"{ status != error }"##,
    r##"{ statusMessage = "status message" }"##,
    r##"{ statusMessage = "" }"##,
    r##"{ statusMessage =~ ".*" }"##,
    r##"{ statusMessage != "" }"##,
    r##"{ kind = internal }"##,
    r##"{ kind = client }"##,
    r##"{ kind = consumer }"##,
    r##"{ traceDuration > 1s }"##,
    r##"{ rootServiceName = "foo" }"##,
    r##"{ rootName != "foo" }"##,
    r##"{ duration > 1s }"##,
    r##"{ 1 < 1h }"##,
    r##"{ 1 <= 1.1 }"##,
    r##"{ event.foo = "bar" }"##,
    r##"{ link.foo = "bar" }"##,
    r##"{ instrumentation.foo = "bar" }"##,
    r##"{ trace:duration > 2s }"##,
    r##"{ trace:rootName = "a" }"##,
    r##"{ trace:rootService = "a" }"##,
    r##"{ trace:id = "aasdf4ergf" }"##,
    r##"{ span:duration > 2s }"##,
    r##"{ span:status = error }"##,
    r##"{ span:kind = client }"##,
    r##"{ span:statusMessage = "status message" }"##,
    r##"{ span:id = "61626364656667" }"##,
    r##"{ event:name = "exception" }"##,
    r##"{ event:timeSinceStart > 1s }"##,
    r##"{ link:traceID = "f1f1f1f1f1f1ff1f1f1f1f1f1f1f1f1" }"##,
    r##"{ link:spanID = "f1f1f1f1f1f1f1f1" }"##,
    r##"{ instrumentation:name = "grpc" }"##,
    r##"{ instrumentation:version = "v3.34" }"##,
    r##"{ 1 + 1 = 2 }"##,
    r##"{ 1 - 1 = 2 }"##,
    r##"{ 1 * 1 = 2 }"##,
    r##"{ 1 / 1 = 2 }"##,
    r##"{ 1 ^ 1 = 2 }"##,
    r##"{ .a + 1 = 2 }"##,
    r##"{ .a - 1 = 2 }"##,
    r##"{ .a * 1 = 2 }"##,
    r##"{ .a / 1 = 2 }"##,
    r##"{ .a ^ 1 = 2 }"##,
    r##"{ duration > 1s * 2s }"##,
    r##"{ 1 * 1h = 1 }"##,
    r##"{ 1 / 1.1 = 1 }"##,
    r##"{ .http.status >= "200" }"##,
    r##"{ true } && { true }"##,
    r##"{ true } || { true }"##,
    r##"{ true } >> { true }"##,
    r##"{ true } << { true }"##,
    r##"{ true } > { true }"##,
    r##"{ true } < { true }"##,
    r##"{ true } ~ { true }"##,
    r##"{ true } !> { true }"##,
    r##"{ true } !< { true }"##,
    r##"{ true } !~ { true }"##,
    r##"{ true } !>> { true }"##,
    r##"{ true } !<< { true }"##,
    r##"{ true } &> { true }"##,
    r##"{ true } &< { true }"##,
    r##"{ true } &~ { true }"##,
    r##"{ true } &>> { true }"##,
    r##"{ true } &<< { true }"##,
    r##"({ true } | count() > 1 | { false }) >> ({ true } | count() > 1 | { false })"##,
    r##"({ true } | count() > 1 | { false }) > ({ true } | count() > 1 | { false })"##,
    r##"({ true } | count() > 1 | { false }) ~ ({ true } | count() > 1 | { false })"##,
    r##"avg(.field) > 1"##,
    r##"max(duration) >= 1s"##,
    r##"max(duration) > 1"##,
    r##"{ true } | max(duration) = 1h"##,
    r##"{ true } | min(duration) = 1h"##,
    r##"{ true } | sum(duration) = 1h"##,
    r##"{ true } | max(.a) = 1"##,
    r##"{ true } | max(span.a) = 1"##,
    r##"{ true } | max(resource.a) = 1"##,
    r##"{ true } | max(1 + .a) = 1"##,
    r##"{ true } | max((1 + .a) * 2) = 1"##,
    r##"max(duration) > 3s | { status = error || .http.status = 500 }"##,
    r##"select(.a)"##,
    r##"{} | select(.a,.b,.c)"##,
    r##"{ true } | { .a }"##,
    r##"{ true } | count() = 1"##,
    r##"{ true } | avg(duration) = 1h"##,
    r##"count() = 1 | { true }"##,
    r##"{ true } | count() = 1 | { true }"##,
    r##"({ true } | count() > 1 | { false }) && ({ true } | count() > 1 | { false })"##,
    r##"({ true } | count() > 1 | { false }) || ({ true } | count() > 1 | { false })"##,
    r##"{ true } | coalesce()"##,
    r##"{ true } | by(1 + .a) | coalesce()"##,
    r##"{ true } | by(.a)"##,
    r##"{ true } | by(1 + .a)"##,
    r##"by(.a) | { true }"##,
    r##"{ true } | by(name) | count() > 2"##,
    r##"{ true } | by(.field) | avg(.b) = 2"##,
    r##"{ true } | by(3 * .field - 2) | max(duration) < 1s"##,
    r##"{} | rate()"##,
    r##"{} | count_over_time() by (name) with(sample=0.1)"##,
    r##"{} | min_over_time(duration) by (span.http.path)"##,
    r##"{} | max_over_time(duration) by (span.http.path)"##,
    r##"{} | avg_over_time(duration) by (span.http.path)"##,
    r##"{} | quantile_over_time(duration, 0, 0.9, 1) by (span.http.path)"##,
    r##"{ nestedSetLeft > 3 }"##,
    r##"{ } >> { kind = server } | select(nestedSetLeft, nestedSetRight, nestedSetParent)"##,
    // Tempo docs (traceql/construct-traceql-queries, metrics-queries)
    r##"{ span.http.method = "GET" }"##,
    r##"{ resource.service.name = "frontend" }"##,
    r##"{ span.http.status_code >= 400 && span.http.status_code < 500 }"##,
    r##"{ resource.service.name = "frontend" && span:name = "POST /api/orders" }"##,
    r##"{ span:duration > 1s }"##,
    r##"{ name = "HTTP GET" }"##,
    r##"{ .http.status_code = 200 }"##,
    r##"{ span.http.url = "/path/of/api" }"##,
    r##"{ resource.cloud.region = "us-east-1" }"##,
    r##"{ resource.service.name = "api-gateway" } >> { span.db.system = "postgresql" }"##,
    r##"{ .service.name = "shop-backend" }"##,
    r##"{ span.http.method =~ "DELETE|GET" }"##,
    r##"{ span.http.method !~ "DELETE|GET" }"##,
    r##"{ .http.status_code >= 400 && .http.status_code < 500 } | count() > 2"##,
    r##"{ resource.service.name = "foo" } | avg(span:duration) > 20ms"##,
    r##"{ } | count() > 10"##,
    r##"{ span.http.status_code = 500 } | by(resource.service.name) | count() > 1"##,
    r##"{ status = error } | select(span.http.url, resource.service.name)"##,
    r##"{ span:name = "foo" } && { span:name = "bar" }"##,
    r##"({ span.http.status_code = 200 } | count() > 2) && ({ span.http.status_code = 500 } | count() > 5)"##,
    r##"{ .db.statement = nil }"##,
    r##"{ span.foo != nil }"##,
    r##"{ nil != span.foo && nil = .bar }"##,
    r##"{ event.exception.message =~ ".*something.*" }"##,
    r##"{ resource.service.name = "productcatalogservice" } | rate()"##,
    r##"{ span:status = error } | rate() by (resource.service.name)"##,
    r##"{ span:name = "GET /:endpoint" } | quantile_over_time(span:duration, .99) by (span.http.target)"##,
    r##"{ span:name = "GET /:endpoint" } | quantile_over_time(span:duration, .99, .9, .5)"##,
    r##"{ resource.service.name = "foo" } | histogram_over_time(span:duration)"##,
    r##"{ } | count_over_time() by (span.http.status_code)"##,
    r##"{ resource.service.name = "checkout" } | compare({ status = error })"##,
    r##"{ resource.service.name = "checkout" } | compare({ status = error }, 5)"##,
    r##"{ resource.service.name = "checkout" } | compare({ status = error }, 5, 1700000000000000000, 1700000600000000000)"##,
    r##"{ } | rate() by (resource.service.name) | topk(10)"##,
    r##"{ } | avg_over_time(span:duration) by (span.http.route) | bottomk(5)"##,
    r##"{ } | sum_over_time(span.http.response.size)"##,
    r##"{ span:status = error } | rate() > 10"##,
    r##"{ span:status = error } | rate() > 10 < 20"##,
    r##"{ } | rate() | topk(5) > 2"##,
    r##"{ } | count_over_time() with(sample=true)"##,
    r##"{ } | count_over_time() with(span_sample=0.1)"##,
    r##"{ } with(most_recent=true)"##,
    r##"{ status = error } with(most_recent=true, exemplars=10)"##,
    r##"{ } with(a=1) with(b="x")"##,
    r##"{ span."foo bar" = "x" }"##,
    r##"{ ."x.y" = 1 }"##,
    r##"{ resource."service name" = "a" }"##,
    r##"{ resource.service.name != "a" } !> { span.x = 1 }"##,
    r##"{ span.http.method = "GET" } &>> { .db.system = "redis" }"##,
    r##"{ trace:rootService = "frontend" }"##,
    r##"{ span:parentID = "0000000000000001" }"##,
    r##"{ span:childCount > 2 }"##,
    r##"{ nestedSetParent < 0 }"##,
    r##"{ rootServiceName = `foo` }"##,
    r##"{ .a = "a\"b\\c\n\t\x41\u00e9" }"##,
    r##"{ duration > 1h2m3s }"##,
    r##"{ duration > 100ms }"##,
    r##"{ duration > 1.5s }"##,
    r##"{ duration > 10us }"##,
    r##"{ duration > 10µs }"##,
    r##"{ duration > 5ns }"##,
    r##"{ duration < 1d }"##,
    r##"{ .a = 1.5e3 }"##,
    r##"{ .num = -5 }"##,
    r##"{ span.count = 1 }"##,
    r##"{ .a = minInt || .b = maxInt }"##,
    // Precedence and grouping
    r##"{ .a = 1 && .b = 2 || .c = 3 }"##,
    r##"{ .a = 1 || .b = 2 && .c = 3 }"##,
    r##"{ .a + .b * 2 > 3 }"##,
    r##"{ (.a + .b) * 2 > 3 }"##,
    r##"{ 2 ^ 3 ^ 2 = .x }"##,
    r##"{ -.a * 2 = 1 }"##,
    r##"{ !(.a = 1) }"##,
    r##"{ !.a && .b }"##,
    r##"{ .a - .b - .c = 0 }"##,
    r##"{ .a - (.b - .c) = 0 }"##,
    r##"{ .a % 2 = 0 }"##,
    r##"{ .a } > { .b } && { .c }"##,
    r##"{ .a } && { .b } > { .c }"##,
    r##"({ .a } && { .b }) > { .c }"##,
    r##"({ .a }) && { .b }"##,
    r##"(({ .a }))"##,
    r##"{ .a } >> ({ .b } || { .c })"##,
    r##"({ .a } | by(.x)) && ({ .b })"##,
    r##"({ .a } | by(.x)) && ({ .b } > { .c })"##,
    r##"({ .a } | count() > 1)"##,
    r##"({ .a } | by(.x))"##,
    r##"(count() > 1)"##,
    r##"(count()) > 1"##,
    r##"count() > -1s"##,
    r##"({ .a } | count()) > 2"##,
    r##"({} | rate()) / ({ status = error } | rate())"##,
    r##"({} | rate() by (resource.service.name)) + ({} | count_over_time())"##,
    r##"(({} | rate()) - ({} | rate())) * ({} | rate())"##,
    r##"({} | rate()) * ({} | rate()) | topk(3)"##,
    r##"({} | rate()) > 5"##,
    r##"({} | rate() > 5)"##,
    r##"({} | rate()) + ({} | rate()) > 5 | bottomk(2)"##,
    r##"{} | rate() with(sample=true)"##,
    r##"{} | rate() by (.a, .b, .c, .d, .e)"##,
    r##"{} | quantile_over_time(duration, 0, 1) by (.a, .b, .c, .d)"##,
    r##"({ .a }) | count() > 1"##,
    r##"{ .a } | ({ .b })"##,
];

/// Queries Tempo's lexer or grammar rejects, with the column of the error.
const SYNTAX_ERRORS: &[(&str, usize)] = &[
    (r##"true"##, 1),
    (r##"[ true ]"##, 1),
    (r##"( true )"##, 3),
    (r##"{ . }"##, 4),
    (r##"{ < }"##, 3),
    (r##"{ .a < }"##, 8),
    (r##"{ .a < 3"##, 9),
    (r##"{ (.a < 3 }"##, 11),
    (r##"{ attribute = 4 }"##, 3),
    (r##"{ .attribute == 4 }"##, 15),
    (r##"{ span. }"##, 8),
    (r##"{ true } + { true }"##, 10),
    (r##"{ true } - { true }"##, 10),
    (r##"{ true } * { true }"##, 10),
    (r##"{ true } / { true }"##, 10),
    (r##"{ true } ^ { true }"##, 10),
    (r##"{ true } = { true }"##, 10),
    (r##"{ true } <= { true }"##, 10),
    (r##"{ true } >= { true }"##, 10),
    (r##"max(name) = "foo""##, 11),
    (r##"avg("foo") = "bar""##, 12),
    (r##"max(status) = ok"##, 13),
    (r##"max(kind) = consumer"##, 11),
    (r##"max(duration) < ok"##, 15),
    (r##"min(1) = "foo""##, 8),
    (r##"min(parent) = nil"##, 15),
    (r##"avg(childCount) > "foo""##, 5),
    (r##"avg(.field) + 1"##, 16),
    (r##"sum(3) - 2"##, 11),
    (r##"min(childCount) && 2"##, 5),
    (r##"select(.a"##, 10),
    (r##"select()"##, 8),
    (r##"select(1 + "string")"##, 8),
    (r##"coalesce() | { true }"##, 1),
    (r##"count() > 3 && { true }"##, 13),
    (r##"{ true } | count()"##, 19),
    (r##"{ true } | notAnAggregate() = 1"##, 12),
    (r##"{ true } | count = 1"##, 18),
    (r##"{ true } | max() = 1"##, 16),
    (r##"{ true } | by()"##, 15),
    (r##"({ true }) + (count()) = 1"##, 12),
    (r##"({ true }) && (count())"##, 12),
    (r##"({ true } | count()) && ({ true } | count()) = 1"##, 22),
    (r##"({ true }) + ({ true }) = 1"##, 12),
    (r##"({ true } | count()) + ({ true } | count())"##, 44),
    (r##"(by(namespace) | count()) > 2 * 2"##, 5),
    (r##"(by(namespace) | count()) * 2 > 2"##, 5),
    (r##"2 < (by(namespace) | count())"##, 9),
    (r##"{ trace:status = error }"##, 9),
    (r##"{ trace:kind = server }"##, 9),
    (r##"{ trace:name = "a" }"##, 9),
    (r##"{ trace:rootServiceName = "a" }"##, 9),
    (r##"{ span:rootName = "bar" }"##, 8),
    (r##"{ childCount > 1 }"##, 3),
    (r##"{ .a = nil = }"##, 14),
    (r##"{ nil }"##, 7),
    (r##"{ .a > nil }"##, 12),
    (r##"{ .a ~ .b }"##, 6),
    (r##"{ .a } && ({ .b } | count() > 1)"##, 8),
    (r##"({ .a } | count() > 1) && { .b }"##, 24),
    (r##"({ .a } | by(.x)) | count() > 1"##, 19),
    (r##"{ .a } | ({ .b } | by(.c))"##, 10),
    (r##"{ .a } | rate() | { .b }"##, 19),
    (r##"{ .a } | rate() | count()"##, 19),
    (r##"rate()"##, 1),
    (r##"{} | topk(5)"##, 6),
    (r##"{} | rate() | topk()"##, 20),
    (r##"{} | rate() | topk(1.5)"##, 20),
    (r##"{} | rate() by ()"##, 17),
    (r##"{} | quantile_over_time(duration)"##, 33),
    (r##"{} | quantile_over_time(duration, -1)"##, 35),
    (r##"{} | compare({ .a }, 1, 2)"##, 26),
    (r##"{} | compare(.a)"##, 14),
    (r##"({} | rate()) + {}"##, 15),
    (r##"({} | rate()) % ({} | rate())"##, 15),
    (r##"(({} | rate()) > 5)"##, 19),
    (r##"{} | rate() > .a"##, 15),
    (r##"{ .a = "unterminated }"##, 8),
    (r##"{ .a = "bad \q escape" }"##, 13),
    (r##"{ span."unterminated = 1 }"##, 8),
    (r##"{ .a = 99999999999999999999 }"##, 8),
    (r##"{ .a = 1 } with(sample)"##, 23),
    (r##"{ .a = 1 } with(sample=)"##, 24),
    (r##"{ .a = 1 } with(name=1)"##, 17),
    (r##"{ .a = 1 } with(x=-1)"##, 19),
    (r##"{ .a = 1 } with(x=nil)"##, 19),
    (r##"{ .a = 1 } |"##, 13),
    (r##"{ .a = 1 } }"##, 12),
    (r##"{ .a = 1 } {"##, 12),
    (r##"{ .a === 1 }"##, 7),
    (r##"{ .a = 1 } ! { .b = 2 }"##, 12),
    (r##"{ .a = 1 } & { .b = 2 }"##, 12),
    (r##"{ .a = 'x' }"##, 8),
    (r##"{ span: = 1 }"##, 9),
    (r##"{ span:foo = 1 }"##, 8),
    (r##"{ resource:name = 1 }"##, 11),
    (r##"{ .a = 1 } | by(.b, .c)"##, 19),
    (r##"{ .a = 1 } | select(1)"##, 21),
    (r##"{ .a = 1 } | coalesce(.a)"##, 23),
];

/// Queries that parse but fail Tempo's validation (types, regexes, aggregates, grouping).
const VALIDATION_ERRORS: &[(&str, usize)] = &[
    (r##"{ status }"##, 1),
    (r##"{ kind }"##, 1),
    (r##"{ ok }"##, 1),
    (r##"{ 1.1 }"##, 1),
    (r##"{ 1h }"##, 1),
    (r##"{ "foo" }"##, 1),
    (r##"{ 1 + 1 }"##, 1),
    (r##"{ 1 + "foo" = 1 }"##, 5),
    (r##"{ 1 - true = 1 }"##, 5),
    (r##"{ 1 / ok = 1 }"##, 5),
    (r##"{ 1 ^ name = 1 }"##, 5),
    (r##"{ 1 = "foo" }"##, 5),
    (r##"{ 1 != true }"##, 5),
    (r##"{ 1 > ok }"##, 5),
    (r##"{ 1 = name }"##, 5),
    (r##"{ 1 =~ 2}"##, 5),
    (r##"{ 1 !~ 2}"##, 5),
    (r##"{ 1 && "foo" }"##, 5),
    (r##"{ 1 || ok }"##, 5),
    (r##"{ true || 1.1 }"##, 8),
    (r##"{ status > ok }"##, 10),
    (r##"{ kind < consumer }"##, 8),
    (r##"{ traceDuration > "test" }"##, 17),
    (r##"{ rootServiceName = 1 }"##, 19),
    (r##"{ rootName != 3.2 }"##, 12),
    (r##"{ span.foo =~ "[" }"##, 12),
    (r##"{ span.foo !~ "[" }"##, 12),
    (r##"{ .a =~ "(?P<n>x" }"##, 6),
    (r##"{ -true }"##, 3),
    (r##"{ -"foo" = "bar" }"##, 3),
    (r##"{ -ok = status }"##, 3),
    (r##"{ -name = "foo" }"##, 3),
    (r##"{ !"foo" = "bar" }"##, 3),
    (r##"{ !ok = status }"##, 3),
    (r##"{ !consumer = kind }"##, 3),
    (r##"{ !name = "foo" }"##, 3),
    (r##"{ !1 = 1 }"##, 3),
    (r##"{ !1h = 1 }"##, 3),
    (r##"{ !1.1 = 1.1 }"##, 3),
    (r##"min(1 = 3) = 1"##, 1),
    (r##"sum(3) = 2"##, 1),
    (r##"sum(3) = min(14)"##, 1),
    (r##"min(2h) < max(duration)"##, 1),
    (r##"min(3) = max(duration)"##, 1),
    (r##"min(1) = max(2) + 3"##, 1),
    (r##"min(1.1 - 3) > 1"##, 1),
    (r##"max(1h + 2h) > 1"##, 1),
    (r##"{ true } | by(1)"##, 12),
    (r##"{ true } | by("foo")"##, 12),
    (r##"{ nestedSetLeft = "foo" }"##, 17),
    (r##"{ nestedSetRight = false }"##, 18),
    (r##"{ nestedSetParent > "foo" }"##, 19),
    (r##"({ .a } | avg(duration)) = "foo""##, 26),
    (r##"{ .a = 1 } | { .b = 1 } | { 1 }"##, 27),
    (r##"{ .a } > { .b } && { span:duration = "x" }"##, 36),
    (r##"{ span:status = error && span:kind = 1 }"##, 36),
    (r##"{} | select(.a) | max(span:name) > 1"##, 19),
    (r##"{} | quantile_over_time(duration, .5, 1.5)"##, 6),
];

/// Queries that parse but that Tempo reports as "not yet supported".
const UNSUPPORTED: &[(&str, usize)] = &[
    (r##"min(.field) < max(duration)"##, 13),
    (r##"sum(.field) = min(.field)"##, 13),
    (r##"min(.field) + max(.field) > 1"##, 27),
    (r##"min(.field) + max(span:childCount) > max(duration) - min(.field)"##, 36),
    (r##"max(1 - (2 + .field)) < avg(3 * duration ^ 2)"##, 23),
    (r##"{ .http.status = 200 } | max(.field) - min(.field) > 3"##, 52),
    (r##"{ parent.a != 3 }"##, 3),
    (r##"{ parent.resource.a && true }"##, 3),
    (r##"{ parent.span.a > 3 }"##, 3),
    (r##"{ parent.duration = 1h }"##, 3),
    (r##"{ parent = nil }"##, 3),
    (r##"{ (-(3 / 2) * .test - parent.blerg + .other)^3 = 2 }"##, 23),
    (r##"{ parent }"##, 3),
    (r##"{ 1 % parent = 1 }"##, 7),
    (r##"{ true } | max(parent.a) = 1"##, 16),
    (r##"{ true } | count() + count() = 1"##, 30),
    (r##"({ true } | count()) + ({ true } | count()) = 1"##, 45),
    (r##"({ true } | count()) - ({ true } | count()) <= 1"##, 45),
    (
        r##"({ true } | count()) / ({ true } | count()) > ({ true } | count()) / ({ true } | count())"##,
        45,
    ),
    (r##"({ .a } | count()) > ({ .b } | count())"##, 20),
    (r##"3 = 2"##, 3),
    (r##"avg(.field) > 1 - 3"##, 13),
    (r##"-1 < count()"##, 4),
    (r##"count() + 1 > 2"##, 13),
    (r##"sum(duration) / count() > 10ms"##, 25),
    (r##"{} | select(parent.x)"##, 13),
    (r##"{} | rate() by (.a, .b, .c, .d, .e, .f)"##, 6),
    (r##"{} | histogram_over_time(duration) by (.a, .b, .c, .d, .e)"##, 6),
];

fn canonical(q: &str) -> String {
    parse(q).unwrap_or_else(|e| panic!("{q:?} must parse: {e}")).to_string()
}

#[test]
fn traceql_corpus_valid_queries_parse_and_round_trip() {
    assert!(VALID.len() >= 150, "corpus shrank: {}", VALID.len());
    for q in VALID {
        let ast = parse(q).unwrap_or_else(|e| panic!("{q:?} must parse: {e}"));
        let printed = ast.to_string();
        let again = parse(&printed).unwrap_or_else(|e| panic!("{printed:?} (from {q:?}): {e}"));
        assert_eq!(again, ast, "{q:?} printed as {printed:?} parses differently");
        assert_eq!(again.to_string(), printed, "canonical form of {q:?} is not a fixed point");
    }
}

fn check_errors(table: &[(&str, usize)], kind: ErrorKind) {
    for (q, col) in table {
        let e = match parse(q) {
            Ok(ast) => panic!("{q:?} must be rejected, parsed as {ast}"),
            Err(e) => e,
        };
        assert_eq!(e.kind, kind, "{q:?}: {e}");
        assert_eq!((e.line, e.col), (1, *col), "{q:?}: {e}");
        let prefix = format!("parse error at line 1, col {col}: ");
        assert!(e.to_string().starts_with(&prefix), "{q:?}: {e}");
        assert_eq!(e.to_string(), format!("{prefix}{}", e.message));
    }
}

#[test]
fn traceql_corpus_syntax_errors_point_at_the_token() {
    assert!(SYNTAX_ERRORS.len() + VALIDATION_ERRORS.len() + UNSUPPORTED.len() >= 60);
    check_errors(SYNTAX_ERRORS, ErrorKind::Syntax);
}

#[test]
fn traceql_corpus_validation_errors() {
    check_errors(VALIDATION_ERRORS, ErrorKind::Invalid);
}

#[test]
fn traceql_corpus_unsupported() {
    check_errors(UNSUPPORTED, ErrorKind::Unsupported);
}

#[test]
fn traceql_error_messages() {
    let e = parse("{ .a = 1 }\n  && { .b = }").unwrap_err();
    assert_eq!((e.line, e.col), (2, 13));
    assert_eq!(
        e.to_string(),
        "parse error at line 2, col 13: syntax error: unexpected CLOSE_BRACE"
    );
    let e = parse("{ span.foo =~ \"[\" }").unwrap_err();
    assert_eq!(e.to_string(), "parse error at line 1, col 12: invalid regex: \"[\"");
    let e = parse("{ attribute = 4 }").unwrap_err();
    assert_eq!(e.message, "unknown identifier: attribute");
    // Columns count characters, not bytes (the error is at the end, after `+`).
    let e = parse("{ .é = \"ü\" } +").unwrap_err();
    assert_eq!((e.col, e.offset), (15, 16));
    // A syntax error anywhere wins over an earlier validation error, as in Tempo.
    let e = parse("{ 1 = \"a\" } | {").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Syntax);
}

#[test]
fn traceql_deep_nesting_is_refused_not_a_stack_overflow() {
    let ok = 40;
    let q = format!("{{ {}.a{} = 1 }}", "(".repeat(ok), ")".repeat(ok));
    assert!(parse(&q).is_ok());
    let q = format!("{}{{ .a }}{}", "(".repeat(ok), ")".repeat(ok));
    assert!(parse(&q).is_ok());
    for n in [parser::MAX_NESTING + 1, 100_000] {
        let q = format!("{{ {}.a{} = 1 }}", "(".repeat(n), ")".repeat(n));
        assert!(parse(&q).unwrap_err().message.contains("nested"));
        let q = format!("{{ {}1 = 1 }}", "-".repeat(n));
        assert!(parse(&q).unwrap_err().message.contains("nested"));
        let q = format!("{{ .a{} = 1 }}", " ^ 2".repeat(n));
        assert!(parse(&q).unwrap_err().message.contains("nested"));
        let q = format!("{}{{ .a }}{}", "(".repeat(n), ")".repeat(n));
        assert!(parse(&q).unwrap_err().message.contains("nested"));
    }
    // Long left-associative chains parse in a loop; their length is capped because the tree
    // they build is as deep as they are long.
    let max = parser::MAX_OPERATORS;
    let refused = |q: &str| matches!(parse(q), Err(e) if e.message.contains("operators"));
    assert!(refused(&format!("{{ .a{} }}", " + .b".repeat(max + 1))));
    let q = format!("{{ .a{} = 1 }}", " + .b".repeat(max - 1));
    let ast = parse(&q).unwrap();
    assert!(parse(&ast.to_string()).unwrap() == ast);
    assert!(refused(&vec!["{ .a }"; max + 2].join(" && ")));
    let ast = parse(&vec!["{ .a }"; max + 1].join(" && ")).unwrap();
    assert!(parse(&ast.to_string()).unwrap() == ast);
}

#[test]
fn traceql_metrics_queries_are_flagged() {
    for q in VALID {
        let ast = parse(q).unwrap();
        let looks_metrics = ["rate()", "_over_time(", "compare("].iter().any(|m| q.contains(m));
        assert_eq!(ast.is_metrics(), looks_metrics, "{q:?}");
    }
    assert_eq!(parse_for_search("{} | rate()").unwrap_err(), METRICS_QUERY_ON_SEARCH);
    assert!(parse_for_search("{} | count() > 1").is_ok());
    assert_eq!(
        parse_for_search("{ .a = }").unwrap_err(),
        "invalid TraceQL query: parse error at line 1, col 8: syntax error: unexpected CLOSE_BRACE"
    );
}

// ---------------------------------------------------------------------------- tree shapes

fn filter_expr(q: &str) -> FieldExpr {
    match parse(q).unwrap().body {
        QueryBody::Pipeline(p) => match &p.stages[..] {
            [Stage::Spanset(SpansetExpr::Filter(e))] => e.clone(),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

fn attr(name: &str) -> Box<FieldExpr> {
    Box::new(FieldExpr::Attribute(Attribute {
        scope: AttributeScope::None,
        parent: false,
        name: name.into(),
    }))
}

fn int(i: i64) -> Box<FieldExpr> {
    Box::new(FieldExpr::Static(Static::Int(i)))
}

fn bin(op: BinOp, lhs: Box<FieldExpr>, rhs: Box<FieldExpr>) -> Box<FieldExpr> {
    Box::new(FieldExpr::Binary { op, lhs, rhs })
}

#[test]
fn traceql_and_or_share_one_left_associative_level() {
    // Tempo's `%left AND OR`: no precedence between them, left to right.
    let a = bin(BinOp::Eq, attr("a"), int(1));
    let b = bin(BinOp::Eq, attr("b"), int(2));
    let c = bin(BinOp::Eq, attr("c"), int(3));
    assert_eq!(
        filter_expr("{ .a = 1 && .b = 2 || .c = 3 }"),
        *bin(BinOp::Or, bin(BinOp::And, a.clone(), b.clone()), c.clone())
    );
    assert_eq!(
        filter_expr("{ .a = 1 || .b = 2 && .c = 3 }"),
        *bin(BinOp::And, bin(BinOp::Or, a.clone(), b.clone()), c.clone())
    );
    assert_eq!(canonical("{ .a = 1 || (.b = 2 && .c = 3) }"), "{ .a = 1 || (.b = 2 && .c = 3) }");
}

#[test]
fn traceql_arithmetic_precedence() {
    assert_eq!(
        filter_expr("{ .a + .b * 2 > 3 }"),
        *bin(BinOp::Gt, bin(BinOp::Add, attr("a"), bin(BinOp::Mul, attr("b"), int(2))), int(3))
    );
    assert_eq!(
        filter_expr("{ 2 ^ 3 ^ 2 = .x }"),
        *bin(BinOp::Eq, bin(BinOp::Pow, int(2), bin(BinOp::Pow, int(3), int(2))), attr("x"))
    );
    assert_eq!(
        filter_expr("{ .a - .b - .c = 0 }"),
        *bin(BinOp::Eq, bin(BinOp::Sub, bin(BinOp::Sub, attr("a"), attr("b")), attr("c")), int(0))
    );
    // Unary minus and not sit between `+ -` and `* / %`: they take a product.
    let neg = |e| Box::new(FieldExpr::Unary { op: UnaryOp::Neg, expr: e });
    assert_eq!(
        filter_expr("{ -.a * 2 = 1 }"),
        *bin(BinOp::Eq, neg(bin(BinOp::Mul, attr("a"), int(2))), int(1))
    );
    assert_eq!(
        filter_expr("{ -.a + 2 = 1 }"),
        *bin(BinOp::Eq, bin(BinOp::Add, neg(attr("a")), int(2)), int(1))
    );
    assert_eq!(canonical("{ (-.a) * 2 = 1 }"), "{ (-.a) * 2 = 1 }");
    assert_eq!(canonical("{ .a * (-.b) * .c = 1 }"), "{ .a * (-.b) * .c = 1 }");
}

#[test]
fn traceql_nil_comparisons_become_existence_checks() {
    let exists = FieldExpr::Unary { op: UnaryOp::Exists, expr: attr("a") };
    assert_eq!(filter_expr("{ .a != nil }"), exists);
    assert_eq!(filter_expr("{ nil != .a }"), exists);
    assert_eq!(filter_expr("{ nil = nil }"), FieldExpr::Static(Static::Bool(false)));
    assert_eq!(canonical("{ nil = .a + 1 }"), "{ .a + 1 = nil }");
    assert_eq!(canonical("{ (.a = 1) != nil }"), "{ .a = 1 != nil }");
}

#[test]
fn traceql_spanset_operator_precedence() {
    let f = |n: &str| {
        Box::new(SpansetExpr::Filter(FieldExpr::Attribute(Attribute {
            scope: AttributeScope::None,
            parent: false,
            name: n.into(),
        })))
    };
    let op = |op, lhs, rhs| Box::new(SpansetExpr::Op { op, lhs, rhs });
    let body = |q: &str| match parse(q).unwrap().body {
        QueryBody::Pipeline(mut p) => match p.stages.pop() {
            Some(Stage::Spanset(e)) => e,
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    assert_eq!(
        body("{ .a } > { .b } && { .c }"),
        *op(SpansetOp::And, op(SpansetOp::Child, f("a"), f("b")), f("c"))
    );
    assert_eq!(
        body("{ .a } && { .b } > { .c }"),
        *op(SpansetOp::And, f("a"), op(SpansetOp::Child, f("b"), f("c")))
    );
    assert_eq!(
        body("{ .a } >> { .b } ~ { .c }"),
        *op(SpansetOp::Sibling, op(SpansetOp::Descendant, f("a"), f("b")), f("c"))
    );
    assert_eq!(
        body("{ .a } || { .b } && { .c }"),
        *op(SpansetOp::And, op(SpansetOp::Union, f("a"), f("b")), f("c"))
    );
    assert_eq!(canonical("{ .a } >> ({ .b } || { .c })"), "{ .a } >> ({ .b } || { .c })");
}

#[test]
fn traceql_pipelines_and_metrics_shapes() {
    let q = parse("{ .a } | by(.b) | count() > 2 | select(span:name, .c)").unwrap();
    let QueryBody::Pipeline(p) = &q.body else { panic!() };
    assert!(matches!(
        &p.stages[..],
        [Stage::Spanset(_), Stage::By(_), Stage::ScalarFilter(_), Stage::Select(s)] if s.len() == 2
    ));
    let q =
        parse("{} | quantile_over_time(duration, .9, .99) by (resource.svc) | topk(3)").unwrap();
    assert!(q.is_metrics());
    let QueryBody::Metrics(MetricsQuery {
        expr: MetricsExpr::Pipeline { first, second, .. }, ..
    }) = &q.body
    else {
        panic!()
    };
    assert!(matches!(
        first,
        MetricsFirstStage::QuantileOverTime { quantiles, by, .. } if quantiles == &[0.9, 0.99] && by.len() == 1
    ));
    assert_eq!(second, &[SecondStage::TopK(3)]);
    let q = parse("{} | rate() > 1s").unwrap();
    let QueryBody::Metrics(MetricsQuery { expr: MetricsExpr::Pipeline { second, .. }, .. }) =
        &q.body
    else {
        panic!()
    };
    assert_eq!(second, &[SecondStage::Filter { op: CmpOp::Gt, value: 1.0 }]);
    let q = parse("{} with(most_recent=true, sample=0.1)").unwrap();
    assert!(!q.is_metrics());
    assert_eq!(q.hints[0], Hint { name: "most_recent".into(), value: Static::Bool(true) });
    assert_eq!(q.hints[1], Hint { name: "sample".into(), value: Static::Float(0.1) });
}

#[test]
fn traceql_canonical_forms() {
    let cases = [
        ("{}", "{}"),
        ("{ true }", "{}"),
        ("{   .a=1   }", "{ .a = 1 }"),
        ("{ duration > 1000ms }", "{ span:duration > 1s }"),
        ("{ duration > 90s }", "{ span:duration > 1m30s }"),
        ("{ duration > 1.5h }", "{ span:duration > 1h30m }"),
        ("{ duration > 0.0015s }", "{ span:duration > 1.5ms }"),
        ("{ duration > 1500ns }", "{ span:duration > 1.5us }"),
        ("{ .a = `x\"y` }", r#"{ .a = "x\"y" }"#),
        ("{ .a = 1.0 }", "{ .a = 1.0 }"),
        ("{ span.\"a b\" = 1 }", "{ span.\"a b\" = 1 }"),
        ("{ .\"5xx\" = 1 }", "{ .\"5xx\" = 1 }"),
        ("{ .\"a\\\"b\" = 1 }", "{ .\"a\\\"b\" = 1 }"),
        ("(({ .a }))", "{ .a }"),
        ("{} | rate()   by(.a,.b)", "{} | rate() by (.a, .b)"),
        ("{} | compare({ .a }, 10, 0, 0)", "{} | compare({ .a })"),
    ];
    for (q, want) in cases {
        assert_eq!(canonical(q), want, "{q:?}");
    }
}

#[test]
fn traceql_regexes_are_anchored() {
    let re = compile_regex("a.c").unwrap();
    assert!(re.is_match("abc"));
    assert!(!re.is_match("xabc"));
    assert!(!re.is_match("abcx"));
    assert!(compile_regex("DELETE|GET").unwrap().is_match("GET"));
    assert!(!compile_regex("DELETE|GET").unwrap().is_match("GETX"));
}

// ---------------------------------------------------------------------------- property tests

mod props {
    use super::super::parser::parse_unvalidated;
    use super::*;
    use proptest::prelude::*;

    fn attribute() -> impl Strategy<Value = Attribute> {
        let scope = prop_oneof![
            Just(AttributeScope::None),
            Just(AttributeScope::Span),
            Just(AttributeScope::Resource),
            Just(AttributeScope::Event),
            Just(AttributeScope::Link),
            Just(AttributeScope::Instrumentation),
        ];
        let name = prop_oneof![
            "[a-z][a-z0-9_.]{0,6}",
            Just("http.status_code".to_string()),
            Just("foo bar".to_string()),
            Just("5xx".to_string()),
            Just("a\"b\\c".to_string()),
            Just("x+y".to_string()),
            Just(String::new()),
        ];
        (scope, any::<bool>(), name).prop_map(|(scope, parent, name)| {
            let parent = parent && matches!(scope, AttributeScope::None | AttributeScope::Span);
            Attribute { scope, parent, name }
        })
    }

    fn leaf() -> impl Strategy<Value = FieldExpr> {
        prop_oneof![
            attribute().prop_map(FieldExpr::Attribute),
            (0i64..1000).prop_map(|i| FieldExpr::Static(Static::Int(i))),
            (0u32..10_000).prop_map(|f| FieldExpr::Static(Static::Float(f as f64 / 8.0))),
            (0i64..10_000_000_000).prop_map(|d| FieldExpr::Static(Static::Duration(d))),
            "[ -~é\\n]{0,6}".prop_map(|s| FieldExpr::Static(Static::String(s))),
            any::<bool>().prop_map(|b| FieldExpr::Static(Static::Bool(b))),
            Just(FieldExpr::Static(Static::Status(Status::Error))),
            Just(FieldExpr::Static(Static::Kind(Kind::Server))),
            Just(FieldExpr::Intrinsic(Intrinsic::Duration)),
            Just(FieldExpr::Intrinsic(Intrinsic::EventName)),
            Just(FieldExpr::Intrinsic(Intrinsic::NestedSetParent)),
        ]
    }

    fn field_expr() -> impl Strategy<Value = FieldExpr> {
        let ops = [
            BinOp::Add,
            BinOp::Sub,
            BinOp::Mul,
            BinOp::Div,
            BinOp::Mod,
            BinOp::Pow,
            BinOp::Eq,
            BinOp::Neq,
            BinOp::Lt,
            BinOp::Lte,
            BinOp::Gt,
            BinOp::Gte,
            BinOp::Re,
            BinOp::NotRe,
            BinOp::And,
            BinOp::Or,
        ];
        let uops = [UnaryOp::Neg, UnaryOp::Not, UnaryOp::Exists, UnaryOp::NotExists];
        leaf().prop_recursive(5, 40, 2, move |inner| {
            prop_oneof![
                (proptest::sample::select(ops.to_vec()), inner.clone(), inner.clone()).prop_map(
                    |(op, l, r)| FieldExpr::Binary { op, lhs: Box::new(l), rhs: Box::new(r) }
                ),
                (proptest::sample::select(uops.to_vec()), inner)
                    .prop_map(|(op, e)| FieldExpr::Unary { op, expr: Box::new(e) }),
            ]
        })
    }

    fn spanset() -> impl Strategy<Value = SpansetExpr> {
        let ops = [
            SpansetOp::And,
            SpansetOp::Union,
            SpansetOp::Child,
            SpansetOp::Parent,
            SpansetOp::Descendant,
            SpansetOp::NotSibling,
            SpansetOp::UnionAncestor,
        ];
        field_expr().prop_map(SpansetExpr::Filter).prop_recursive(3, 8, 2, move |inner| {
            (proptest::sample::select(ops.to_vec()), inner.clone(), inner)
                .prop_map(|(op, l, r)| SpansetExpr::Op { op, lhs: Box::new(l), rhs: Box::new(r) })
        })
    }

    fn query() -> impl Strategy<Value = Query> {
        (spanset(), proptest::option::of(field_expr())).prop_map(|(s, by)| {
            let mut stages = vec![Stage::Spanset(s)];
            if let Some(e) = by {
                stages.push(Stage::By(e));
            }
            Query { body: QueryBody::Pipeline(Pipeline { stages }), hints: vec![] }
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// The printer and the parser agree on precedence, quoting and literals for any tree
        /// (validation aside: random trees are mostly ill-typed).
        #[test]
        fn traceql_printed_trees_parse_back(q in query()) {
            let printed = q.to_string();
            let parsed = parse_unvalidated(&printed)
                .map_err(|e| TestCaseError::fail(format!("{printed:?}: {e}")))?;
            prop_assert_eq!(parsed, q, "{}", printed);
        }

        /// Arbitrary text never panics the lexer or parser.
        #[test]
        fn traceql_arbitrary_text(q in prop_oneof![
            any::<String>(),
            "[{}()|&!=<>~+*/%^,.:\"`\\ a-z0-9µé_-]{0,40}",
        ]) {
            if let Ok(ast) = parse(&q) {
                let printed = ast.to_string();
                let again = parse(&printed);
                prop_assert_eq!(again, Ok(ast), "{:?} -> {}", q, printed);
            }
        }

        /// Arbitrary token soup never panics, and whatever parses round-trips.
        #[test]
        fn traceql_token_soup(toks in proptest::collection::vec(proptest::sample::select(vec![
            "{", "}", "(", ")", "|", "&&", "||", "!", "=", "!=", ">", ">=", "<", "<=", "=~", "!~",
            ">>", "<<", "~", "!>", "&>>", "+", "-", "*", "/", "%", "^", ",", ".a", "span.b",
            "resource.c", "parent.d", "1", "2.5", "1s", "\"x\"", "nil", "true", "error", "server",
            "duration", "span:name", "trace:id", "count()", "avg(", "by(", "select(", "coalesce()",
            "rate()", "| topk(2)", "quantile_over_time(", "with(a=1)", "minInt",
        ]), 0..14)) {
            let q = toks.join(" ");
            if let Ok(ast) = parse(&q) {
                let printed = ast.to_string();
                let again = parse(&printed);
                prop_assert_eq!(again, Ok(ast), "{} -> {}", q, printed);
            }
        }
    }
}

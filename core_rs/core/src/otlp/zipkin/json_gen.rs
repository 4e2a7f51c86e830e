//! A small deterministic generator of Zipkin-v2-like JSON for differential tests: spans
//! with fields in any order, duplicates, nulls, wrong types, escapes (surrogates too),
//! odd numbers, unknown fields of any shape, whitespace anywhere; and random edits.
//!
//! Self-contained (no imports) so an out-of-tree harness can `#[path]`-include it.

/// The generator's state (xorshift; never zero).
pub(crate) struct Gen(pub(crate) u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    /// Whitespace, usually none.
    fn ws(&mut self) -> &'static str {
        match self.below(8) {
            0 => " ",
            1 => "\n  ",
            2 => "\t\r\n",
            _ => "",
        }
    }

    fn string(&mut self) -> String {
        let mut s = String::from("\"");
        for _ in 0..self.below(6) {
            let part = match self.below(24) {
                0 => r"\u00e9".to_string(),
                1 => r"\ud83d\ude00".to_string(),
                2 => self.pick(&[r#"\""#, r"\\", r"\/", r"\b", r"\f", r"\n", r"\r", r"\t"]).into(),
                3 => format!(r"\u{:04x}", self.below(0x10000)),
                4 => "\u{e9}\u{1f600}".to_string(),
                5 if self.one_in(8) => self.pick(&["\t", "\n", r"\x", r"\u12", r"\"]).into(),
                _ => self.pick(&["a", "GET", "svc-1", "0", "5af7183f", "b1d4cf5f", " "]).into(),
            };
            s.push_str(&part);
        }
        s.push('"');
        s
    }

    fn hex_id(&mut self) -> String {
        let len: usize = *[16, 32, 16, 32, 15, 0].get(self.below(6)).unwrap_or(&16);
        let digits: String = (0..len).map(|_| self.pick(&["0", "a", "F", "9", "c"])).collect();
        if self.one_in(10) {
            format!("\"{}g\"", &digits[..len.saturating_sub(1)])
        } else {
            format!("\"{digits}\"")
        }
    }

    fn number(&mut self) -> String {
        self.pick(&[
            "0",
            "1",
            "1700000000000000",
            "2500",
            "-0",
            "-5",
            "1.5",
            "0.999",
            "1e3",
            "1E+2",
            "2.5e-1",
            "1e-400",
            "-1e-400",
            "1e400",
            "65535",
            "65536",
            "18446744073709551615",
            "18446744073709551616",
            "9007199254740993",
            "123456789012345678901234567890.123e-10",
            "4503599627370496.5",
            "4503599627370497.5",
            "01",
            "1.",
            ".5",
            "-",
            "1e",
            "+1",
        ])
        .to_string()
    }

    /// Any JSON value (sometimes malformed), `depth` levels at most.
    pub(crate) fn value(&mut self, depth: usize) -> String {
        match self.below(if depth == 0 { 6 } else { 8 }) {
            0 => "null".into(),
            1 => self.pick(&["true", "false", "nul", "tru"]).into(),
            2 | 3 => self.number(),
            4 | 5 => self.string(),
            6 => {
                let items: Vec<String> =
                    (0..self.below(4)).map(|_| self.value(depth - 1)).collect();
                format!("[{}]", items.join(","))
            }
            _ => {
                let members: Vec<String> = (0..self.below(4))
                    .map(|_| format!("{}:{}", self.string(), self.value(depth - 1)))
                    .collect();
                format!("{{{}}}", members.join(","))
            }
        }
    }

    /// A value for a string field: mostly strings, sometimes null or another type.
    fn str_field(&mut self, nullable: bool) -> String {
        match self.below(12) {
            0 if nullable => "null".into(),
            1 => self.value(1),
            _ => self.string(),
        }
    }

    fn micros(&mut self) -> String {
        match self.below(10) {
            0 => "null".into(),
            1 => self.value(1),
            _ => self.number(),
        }
    }

    fn endpoint(&mut self) -> String {
        if self.one_in(6) {
            return self.pick(&["null", "[]", "[\"s\", null, \"::1\", 80]", "3"]).into();
        }
        let mut fields = Vec::new();
        for _ in 0..self.below(5) {
            let (key, value) = match self.below(6) {
                0 => ("serviceName", self.str_field(true)),
                1 => ("ipv4", self.str_field(true)),
                2 => ("ipv6", self.str_field(true)),
                3 => {
                    ("port", self.pick(&["80", "0", "65535", "65536", "-1", "8.0", "null"]).into())
                }
                _ => ("unknown", self.value(2)),
            };
            fields.push(self.member(key, &value));
        }
        format!("{{{}}}", fields.join(","))
    }

    fn tags(&mut self) -> String {
        if self.one_in(10) {
            return self.pick(&["null", "[]", "\"a\"", "{\"a\": 1}"]).into();
        }
        let keys = [
            "http.method",
            "host.name",
            "service.name",
            "otel.scope.name",
            "otel.status_code",
            "error",
            "span.kind",
            "otlp.link.0",
            "n",
            "",
        ];
        let mut tags = Vec::new();
        for _ in 0..self.below(8) {
            let key =
                if self.one_in(4) { self.string() } else { format!("\"{}\"", self.pick(&keys)) };
            let value = match self.below(10) {
                0 if self.one_in(4) => self.value(1),
                1 => self
                    .pick(&["\"ERROR\"", "\"42\"", "\"true\"", "\"internal\"", "\"1.5\""])
                    .into(),
                _ => self.string(),
            };
            tags.push(format!("{}{key}{}:{}{value}", self.ws(), self.ws(), self.ws()));
        }
        format!("{{{}}}", tags.join(","))
    }

    fn annotations(&mut self) -> String {
        if self.one_in(8) {
            return self.pick(&["null", "{}", "[null]", "[[1, \"a\"]]"]).into();
        }
        let items: Vec<String> = (0..self.below(3))
            .map(|_| {
                let mut fields = Vec::new();
                if !self.one_in(4) {
                    let t = self.micros();
                    fields.push(self.member("timestamp", &t));
                }
                if !self.one_in(4) {
                    let v = self.str_field(false);
                    fields.push(self.member("value", &v));
                }
                format!("{{{}}}", fields.join(","))
            })
            .collect();
        format!("[{}]", items.join(","))
    }

    fn member(&mut self, key: &str, value: &str) -> String {
        format!("{}\"{key}\"{}:{}{value}{}", self.ws(), self.ws(), self.ws(), self.ws())
    }

    fn span(&mut self) -> String {
        if self.one_in(20) {
            return self.pick(&["null", "[]", "[\"5af7183fb1d4cf5f\"]", "1"]).into();
        }
        let mut fields = Vec::new();
        let n = self.below(12);
        for _ in 0..n {
            // Mostly distinct fields; a duplicate now and then.
            let (key, value) = match self.below(13) {
                0 => ("traceId", if self.one_in(10) { self.value(1) } else { self.hex_id() }),
                1 => ("id", self.hex_id()),
                2 => ("parentId", if self.one_in(5) { "null".into() } else { self.hex_id() }),
                3 => ("name", self.str_field(true)),
                4 => ("kind", self.pick(&["\"SERVER\"", "\"CLIENT\"", "\"X\"", "null"]).into()),
                5 => ("timestamp", self.micros()),
                6 => ("duration", self.micros()),
                7 => ("localEndpoint", self.endpoint()),
                8 => ("remoteEndpoint", self.endpoint()),
                9 => ("tags", self.tags()),
                10 => ("annotations", self.annotations()),
                _ => (self.pick(&["debug", "shared", "x"]), self.value(3)),
            };
            if fields.iter().any(|f: &(String, String)| f.0 == key) && !self.one_in(8) {
                continue;
            }
            fields.push((key.to_string(), value));
        }
        let members: Vec<String> = fields.iter().map(|(k, v)| self.member(k, v)).collect();
        format!("{{{}}}", members.join(","))
    }

    pub(crate) fn body(&mut self) -> String {
        let spans: Vec<String> = (0..1 + self.below(3)).map(|_| self.span()).collect();
        format!("{}[{}]{}", self.ws(), spans.join(&format!(",{}", self.ws())), self.ws())
    }

    /// `body` with a few random edits.
    pub(crate) fn mutate(&mut self, body: &[u8]) -> Vec<u8> {
        let mut b = body.to_vec();
        for _ in 0..1 + self.below(3) {
            if b.is_empty() {
                break;
            }
            let at = self.below(b.len());
            match self.below(5) {
                0 => b[at] ^= 1 << self.below(8),
                1 => {
                    b.remove(at);
                }
                2 => b.insert(at, *b",:[]{}\"\\ 0en-.".get(self.below(15)).unwrap_or(&b' ')),
                3 => {
                    let end = (at + self.below(12)).min(b.len());
                    let copy = b[at..end].to_vec();
                    b.splice(at..at, copy);
                }
                _ => b.truncate(at),
            }
        }
        b
    }
}

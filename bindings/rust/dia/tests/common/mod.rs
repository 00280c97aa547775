//! Test helpers: the tiny fixtures and a std-only reader of golden.safetensors.
#![allow(dead_code)]
use std::collections::HashMap;
use std::path::PathBuf;

pub const TEXT0: &str = "[S1] Hello from a tiny model. [S2] It only speaks noise (laughs).";
pub const TEXT1: &str = "[S1] Second voice, caf\u{e9} cr\u{e8}me \u{2014} UTF-8 bytes.";

/// tests/fixtures/tiny: $DIA_FIXTURES, else relative to this crate in the libdia checkout.
pub fn fixtures() -> PathBuf {
    match std::env::var("DIA_FIXTURES") {
        Ok(p) => PathBuf::from(p),
        Err(_) => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../tests/fixtures/tiny"),
    }
}

pub fn fixture(name: &str) -> PathBuf {
    fixtures().join(name)
}

pub struct Tensor {
    pub dtype: String,
    pub shape: Vec<usize>,
    pub bytes: Vec<u8>,
}

impl Tensor {
    pub fn f32(&self) -> Vec<f32> {
        assert_eq!(self.dtype, "F32");
        self.bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
    }
    pub fn i32(&self) -> Vec<i32> {
        assert_eq!(self.dtype, "I32");
        self.bytes.chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
    }
}

/// A minimal JSON value: enough for a safetensors header.
#[derive(Debug)]
enum Json {
    Obj(Vec<(String, Json)>),
    Arr(Vec<Json>),
    Str(String),
    Num(f64),
    Other,
}

struct P<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> P<'a> {
    fn ws(&mut self) {
        while self.i < self.s.len() && (self.s[self.i] as char).is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) {
        self.ws();
        assert_eq!(self.s[self.i], c, "JSON: expected {:?} at {}", c as char, self.i);
        self.i += 1;
    }
    fn string(&mut self) -> String {
        self.eat(b'"');
        let mut out = Vec::new();
        while self.s[self.i] != b'"' {
            if self.s[self.i] == b'\\' {
                self.i += 1;
                match self.s[self.i] {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'u' => {
                        let h = std::str::from_utf8(&self.s[self.i + 1..self.i + 5]).unwrap();
                        let c = char::from_u32(u32::from_str_radix(h, 16).unwrap()).unwrap_or('?');
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                        self.i += 4;
                    }
                    c => out.push(c),
                }
            } else {
                out.push(self.s[self.i]);
            }
            self.i += 1;
        }
        self.i += 1;
        String::from_utf8(out).unwrap()
    }
    fn value(&mut self) -> Json {
        self.ws();
        match self.s[self.i] {
            b'{' => {
                self.i += 1;
                let mut v = Vec::new();
                self.ws();
                if self.s[self.i] == b'}' {
                    self.i += 1;
                    return Json::Obj(v);
                }
                loop {
                    let k = self.string();
                    self.eat(b':');
                    v.push((k, self.value()));
                    self.ws();
                    self.i += 1;
                    if self.s[self.i - 1] == b'}' {
                        return Json::Obj(v);
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut v = Vec::new();
                self.ws();
                if self.s[self.i] == b']' {
                    self.i += 1;
                    return Json::Arr(v);
                }
                loop {
                    v.push(self.value());
                    self.ws();
                    self.i += 1;
                    if self.s[self.i - 1] == b']' {
                        return Json::Arr(v);
                    }
                }
            }
            b'"' => Json::Str(self.string()),
            b'-' | b'0'..=b'9' => {
                let st = self.i;
                while self.i < self.s.len() && b"+-.eE0123456789".contains(&self.s[self.i]) {
                    self.i += 1;
                }
                Json::Num(std::str::from_utf8(&self.s[st..self.i]).unwrap().parse().unwrap())
            }
            _ => {
                while self.i < self.s.len() && (self.s[self.i] as char).is_ascii_alphabetic() {
                    self.i += 1;
                }
                Json::Other
            }
        }
    }
}

fn get<'j>(o: &'j [(String, Json)], k: &str) -> &'j Json {
    &o.iter().find(|(n, _)| n == k).unwrap_or_else(|| panic!("missing {}", k)).1
}

fn nums(j: &Json) -> Vec<usize> {
    match j {
        Json::Arr(v) => v.iter().map(|x| if let Json::Num(n) = x { *n as usize } else { panic!("not a number") }).collect(),
        _ => panic!("not an array"),
    }
}

pub fn read_safetensors(path: &std::path::Path) -> HashMap<String, Tensor> {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {}", path.display(), e));
    let n = u64::from_le_bytes(data[..8].try_into().unwrap()) as usize;
    let header = P { s: &data[8..8 + n], i: 0 }.value();
    let body = &data[8 + n..];
    let mut out = HashMap::new();
    if let Json::Obj(entries) = header {
        for (name, t) in entries {
            if name == "__metadata__" {
                continue;
            }
            if let Json::Obj(f) = t {
                let dtype = match get(&f, "dtype") {
                    Json::Str(s) => s.clone(),
                    _ => panic!("dtype"),
                };
                let shape = nums(get(&f, "shape"));
                let off = nums(get(&f, "data_offsets"));
                out.insert(name, Tensor { dtype, shape, bytes: body[off[0]..off[1]].to_vec() });
            }
        }
    }
    out
}

pub fn golden() -> HashMap<String, Tensor> {
    read_safetensors(&fixture("golden.safetensors"))
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    let mut m = 0f64;
    for (x, y) in a.iter().zip(b) {
        let d = (*x as f64 - *y as f64).abs();
        if !(d <= m) {
            m = d; // NaN propagates as a failure
        }
    }
    m
}

pub fn opts() -> dia::Options {
    dia::Options::default().threads(2)
}

//! The STIX 2.0/2.1 patterning language: a lexer and a recursive-descent
//! parser producing a small syntax tree.
//!
//! STIX indicators carry their values inside patterns such as
//! `[ipv4-addr:value = '198.51.100.7' OR domain-name:value = 'x.example']`.
//! Pulling values out with regular expressions gets negations, `IN` sets,
//! escaped quotes and nested parentheses wrong, so the STIX reader parses
//! the grammar of the specification (STIX 2.1 part 9) and then looks at each
//! comparison. The parser is lenient where feeds commonly are (keywords in
//! any case, `hashes.SHA-256` unquoted) and strict where a mistake would
//! change the meaning. Nesting is limited to [`MAX_DEPTH`] levels so that a
//! hostile pattern cannot overflow the stack.

use std::fmt;

/// Deepest nesting of `[...]` and `(...)` accepted.
pub const MAX_DEPTH: usize = 64;

/// A literal value on the right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Literal {
    /// `'text'`, escapes resolved.
    Str(String),
    /// An integer or float, as written.
    Number(String),
    Bool(bool),
    /// `t'2024-01-01T00:00:00Z'`
    Timestamp(String),
    /// `b'base64'`
    Binary(String),
    /// `h'hex'`
    Hex(String),
}

impl Literal {
    /// The text of a string literal; `None` for other literal kinds.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Str(s) => write!(f, "'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
            Self::Number(n) => f.write_str(n),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Timestamp(t) => write!(f, "t'{t}'"),
            Self::Binary(b) => write!(f, "b'{b}'"),
            Self::Hex(h) => write!(f, "h'{h}'"),
        }
    }
}

/// One step of an object path after the object type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathComponent {
    /// `.name` or `.'quoted name'`.
    Property(String),
    /// `[n]`, or `[*]` (`None`).
    Index(Option<i64>),
}

/// `object-type:property.sub[0].'quoted'`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectPath {
    /// The object type, lower case (`ipv4-addr`, `file`…).
    pub object_type: String,
    pub components: Vec<PathComponent>,
}

impl ObjectPath {
    /// The property names in order, list indices left out.
    pub fn properties(&self) -> Vec<&str> {
        self.components
            .iter()
            .filter_map(|c| match c {
                PathComponent::Property(p) => Some(p.as_str()),
                PathComponent::Index(_) => None,
            })
            .collect()
    }
}

impl fmt::Display for ObjectPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.object_type)?;
        for (i, c) in self.components.iter().enumerate() {
            match c {
                PathComponent::Property(p) => {
                    let plain =
                        !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    if plain {
                        f.write_str(p)?;
                    } else {
                        write!(f, "'{p}'")?;
                    }
                }
                PathComponent::Index(Some(n)) => write!(f, "[{n}]")?,
                PathComponent::Index(None) => f.write_str("[*]")?,
            }
        }
        Ok(())
    }
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Eq,
    Neq,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Like,
    Matches,
    IsSubset,
    IsSuperset,
}

impl Operator {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Neq => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::In => "IN",
            Self::Like => "LIKE",
            Self::Matches => "MATCHES",
            Self::IsSubset => "ISSUBSET",
            Self::IsSuperset => "ISSUPERSET",
        }
    }
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    Single(Literal),
    /// The set of an `IN (...)` comparison.
    Set(Vec<Literal>),
}

/// `path [NOT] op value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    pub path: ObjectPath,
    /// `NOT` was written before the operator.
    pub negated: bool,
    pub op: Operator,
    pub operand: Operand,
    /// Byte offset of the comparison in the pattern.
    pub offset: usize,
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.path)?;
        if self.negated {
            f.write_str("NOT ")?;
        }
        write!(f, "{} ", self.op.as_str())?;
        match &self.operand {
            Operand::Single(l) => write!(f, "{l}"),
            Operand::Set(items) => {
                f.write_str("(")?;
                for (i, l) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{l}")?;
                }
                f.write_str(")")
            }
        }
    }
}

/// Comparisons joined inside one observation expression `[...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComparisonExpr {
    Test(Comparison),
    /// `EXISTS path`.
    Exists(ObjectPath),
    And(Vec<ComparisonExpr>),
    Or(Vec<ComparisonExpr>),
}

/// Qualifiers after an observation expression. They are parsed and kept
/// but do not change which values a pattern names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Qualifier {
    /// `WITHIN n SECONDS`
    Within(String),
    /// `REPEATS n TIMES`
    Repeats(String),
    /// `START t'..' STOP t'..'`
    StartStop { start: String, stop: String },
}

/// Observation expressions joined by observation operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObservationExpr {
    /// `[ comparison expression ]`
    Observation(ComparisonExpr),
    And(Vec<ObservationExpr>),
    Or(Vec<ObservationExpr>),
    FollowedBy(Vec<ObservationExpr>),
    Qualified {
        expr: Box<ObservationExpr>,
        qualifier: Qualifier,
    },
}

/// A parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    pub root: ObservationExpr,
}

impl Pattern {
    /// Every comparison in the pattern, in the order written. `EXISTS`
    /// tests are not comparisons and are returned by [`Pattern::exists`].
    pub fn comparisons(&self) -> Vec<&Comparison> {
        let mut out = Vec::new();
        self.walk(&mut |c| {
            if let ComparisonExpr::Test(t) = c {
                out.push(t);
            }
        });
        out
    }

    /// The object paths of `EXISTS` tests.
    pub fn exists(&self) -> Vec<&ObjectPath> {
        let mut out = Vec::new();
        self.walk(&mut |c| {
            if let ComparisonExpr::Exists(p) = c {
                out.push(p);
            }
        });
        out
    }

    /// Visit the leaves (tests) of every comparison expression, without
    /// recursion so that the walk is as safe as the parse.
    fn walk<'a>(&'a self, visit: &mut dyn FnMut(&'a ComparisonExpr)) {
        let mut obs: Vec<&ObservationExpr> = vec![&self.root];
        let mut cmps: Vec<&ComparisonExpr> = Vec::new();
        while let Some(o) = obs.pop() {
            match o {
                ObservationExpr::Observation(c) => cmps.push(c),
                ObservationExpr::And(v)
                | ObservationExpr::Or(v)
                | ObservationExpr::FollowedBy(v) => obs.extend(v.iter().rev()),
                ObservationExpr::Qualified { expr, .. } => obs.push(expr),
            }
            // Drain comparisons now so that leaves come out in source order.
            while let Some(c) = cmps.pop() {
                match c {
                    ComparisonExpr::And(v) | ComparisonExpr::Or(v) => cmps.extend(v.iter().rev()),
                    leaf => visit(leaf),
                }
            }
        }
    }
}

/// Why a pattern did not parse, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    /// Byte offset into the pattern.
    pub offset: usize,
    /// 1-based character column.
    pub column: usize,
    pub message: String,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.message)
    }
}

impl std::error::Error for PatternError {}

/// Parse a STIX pattern.
pub fn parse(pattern: &str) -> Result<Pattern, PatternError> {
    let tokens = lex(pattern).map_err(|(offset, message)| error_at(pattern, offset, message))?;
    let mut p = Parser {
        src: pattern,
        toks: tokens,
        pos: 0,
    };
    let root = p
        .observation_expressions(0)
        .map_err(|(offset, message)| error_at(pattern, offset, message))?;
    if let Some(t) = p.toks.get(p.pos) {
        return Err(error_at(
            pattern,
            t.offset,
            format!(
                "unexpected {} after the end of the pattern",
                t.kind.describe()
            ),
        ));
    }
    Ok(Pattern { root })
}

fn error_at(src: &str, offset: usize, message: String) -> PatternError {
    let offset = offset.min(src.len());
    let column = src.char_indices().take_while(|(i, _)| *i < offset).count() + 1;
    PatternError {
        offset,
        column,
        message,
    }
}

// ---------------------------------------------------------------- lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LBrack,
    RBrack,
    LParen,
    RParen,
    Comma,
    Colon,
    Dot,
    Star,
    Cmp(Operator),
    Str(String),
    Ts(String),
    Bin(String),
    Hex(String),
    Num(String),
    Word(String),
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::LBrack => "`[`".into(),
            Tok::RBrack => "`]`".into(),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::Comma => "`,`".into(),
            Tok::Colon => "`:`".into(),
            Tok::Dot => "`.`".into(),
            Tok::Star => "`*`".into(),
            Tok::Cmp(op) => format!("`{}`", op.as_str()),
            Tok::Str(_) => "a string literal".into(),
            Tok::Ts(_) => "a timestamp literal".into(),
            Tok::Bin(_) => "a binary literal".into(),
            Tok::Hex(_) => "a hex literal".into(),
            Tok::Num(n) => format!("number `{n}`"),
            Tok::Word(w) => format!("`{w}`"),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    kind: Tok,
    offset: usize,
}

type LexResult<T> = Result<T, (usize, String)>;

fn lex(src: &str) -> LexResult<Vec<Token>> {
    let bytes = src.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let start = i;
        let simple = match b {
            b'[' => Some(Tok::LBrack),
            b']' => Some(Tok::RBrack),
            b'(' => Some(Tok::LParen),
            b')' => Some(Tok::RParen),
            b',' => Some(Tok::Comma),
            b':' => Some(Tok::Colon),
            b'.' => Some(Tok::Dot),
            b'*' => Some(Tok::Star),
            _ => None,
        };
        if let Some(t) = simple {
            toks.push(Token {
                kind: t,
                offset: start,
            });
            i += 1;
            continue;
        }
        if b.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let two = bytes.get(i..i + 2);
        let cmp = match two {
            Some(b"==") => Some((Operator::Eq, 2)),
            Some(b"!=") | Some(b"<>") => Some((Operator::Neq, 2)),
            Some(b"<=") => Some((Operator::Le, 2)),
            Some(b">=") => Some((Operator::Ge, 2)),
            _ => match b {
                b'=' => Some((Operator::Eq, 1)),
                b'<' => Some((Operator::Lt, 1)),
                b'>' => Some((Operator::Gt, 1)),
                _ => None,
            },
        };
        if let Some((op, len)) = cmp {
            toks.push(Token {
                kind: Tok::Cmp(op),
                offset: start,
            });
            i += len;
            continue;
        }
        if b == b'\'' {
            let (s, next) = lex_string(src, i)?;
            toks.push(Token {
                kind: Tok::Str(s),
                offset: start,
            });
            i = next;
            continue;
        }
        // t'..', b'..', h'..' literals.
        if matches!(b, b't' | b'b' | b'h') && bytes.get(i + 1) == Some(&b'\'') {
            let (s, next) = lex_string(src, i + 1)?;
            let kind = match b {
                b't' => Tok::Ts(s),
                b'b' => Tok::Bin(s),
                _ => Tok::Hex(s),
            };
            toks.push(Token {
                kind,
                offset: start,
            });
            i = next;
            continue;
        }
        if b.is_ascii_digit()
            || ((b == b'-' || b == b'+') && bytes.get(i + 1).is_some_and(|c| c.is_ascii_digit()))
        {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j].is_ascii_digit() {
                j += 1;
            }
            if bytes.get(j) == Some(&b'.') && bytes.get(j + 1).is_some_and(|c| c.is_ascii_digit()) {
                j += 1;
                while j < bytes.len() && bytes[j].is_ascii_digit() {
                    j += 1;
                }
            }
            toks.push(Token {
                kind: Tok::Num(src[i..j].to_string()),
                offset: start,
            });
            i = j;
            continue;
        }
        if b.is_ascii_alphabetic() || b == b'_' {
            let mut j = i + 1;
            while j < bytes.len()
                && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_' || bytes[j] == b'-')
            {
                j += 1;
            }
            toks.push(Token {
                kind: Tok::Word(src[i..j].to_string()),
                offset: start,
            });
            i = j;
            continue;
        }
        let ch = src[i..].chars().next().unwrap_or('?');
        return Err((start, format!("unexpected character `{ch}`")));
    }
    Ok(toks)
}

/// Lex a `'...'` string starting at the quote at `start`. `\'` and `\\` are
/// escapes; any other backslash is kept as written. Returns the text and the
/// offset after the closing quote.
fn lex_string(src: &str, start: usize) -> LexResult<(String, usize)> {
    let mut out = String::new();
    let mut chars = src[start + 1..].char_indices();
    while let Some((k, c)) = chars.next() {
        match c {
            '\'' => return Ok((out, start + 1 + k + 1)),
            '\\' => match chars.next() {
                Some((_, '\'')) => out.push('\''),
                Some((_, '\\')) => out.push('\\'),
                Some((_, other)) => {
                    out.push('\\');
                    out.push(other);
                }
                None => break,
            },
            other => out.push(other),
        }
    }
    Err((start, "string literal is not closed (missing `'`)".into()))
}

// ---------------------------------------------------------------- parser

struct Parser<'a> {
    src: &'a str,
    toks: Vec<Token>,
    pos: usize,
}

type PResult<T> = Result<T, (usize, String)>;

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.kind)
    }

    fn offset(&self) -> usize {
        self.toks
            .get(self.pos)
            .map(|t| t.offset)
            .unwrap_or(self.src.len())
    }

    fn unexpected(&self, expected: &str) -> (usize, String) {
        match self.toks.get(self.pos) {
            Some(t) => (
                t.offset,
                format!("expected {expected}, found {}", t.kind.describe()),
            ),
            None => (
                self.src.len(),
                format!("expected {expected}, found the end of the pattern"),
            ),
        }
    }

    fn expect(&mut self, want: Tok, what: &str) -> PResult<()> {
        if self.peek() == Some(&want) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected(what))
        }
    }

    /// Is the next token the keyword `kw` (any case)?
    fn at_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn eat_keyword(&mut self, kw: &str) -> bool {
        if self.at_keyword(kw) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn check_depth(&self, depth: usize) -> PResult<()> {
        if depth > MAX_DEPTH {
            Err((
                self.offset(),
                format!("pattern is nested deeper than {MAX_DEPTH} levels"),
            ))
        } else {
            Ok(())
        }
    }

    // observationExpressions: Or (FOLLOWEDBY Or)*
    fn observation_expressions(&mut self, depth: usize) -> PResult<ObservationExpr> {
        let mut items = vec![self.observation_or(depth)?];
        while self.eat_keyword("FOLLOWEDBY") {
            items.push(self.observation_or(depth)?);
        }
        Ok(collapse(items, ObservationExpr::FollowedBy))
    }

    fn observation_or(&mut self, depth: usize) -> PResult<ObservationExpr> {
        let mut items = vec![self.observation_and(depth)?];
        while self.eat_keyword("OR") {
            items.push(self.observation_and(depth)?);
        }
        Ok(collapse(items, ObservationExpr::Or))
    }

    fn observation_and(&mut self, depth: usize) -> PResult<ObservationExpr> {
        let mut items = vec![self.observation(depth)?];
        while self.eat_keyword("AND") {
            items.push(self.observation(depth)?);
        }
        Ok(collapse(items, ObservationExpr::And))
    }

    fn observation(&mut self, depth: usize) -> PResult<ObservationExpr> {
        let mut expr = match self.peek() {
            Some(Tok::LBrack) => {
                self.check_depth(depth + 1)?;
                self.pos += 1;
                let c = self.comparison_or(depth + 1)?;
                self.expect(Tok::RBrack, "`]` to close the observation expression")?;
                ObservationExpr::Observation(c)
            }
            Some(Tok::LParen) => {
                self.check_depth(depth + 1)?;
                self.pos += 1;
                let e = self.observation_expressions(depth + 1)?;
                self.expect(Tok::RParen, "`)`")?;
                e
            }
            _ => return Err(self.unexpected("`[` or `(` to start an observation expression")),
        };
        let mut qualifiers = 0;
        while let Some(q) = self.qualifier()? {
            qualifiers += 1;
            if qualifiers > MAX_DEPTH {
                return Err((
                    self.offset(),
                    format!("more than {MAX_DEPTH} qualifiers on one observation expression"),
                ));
            }
            expr = ObservationExpr::Qualified {
                expr: Box::new(expr),
                qualifier: q,
            };
        }
        Ok(expr)
    }

    fn qualifier(&mut self) -> PResult<Option<Qualifier>> {
        if self.eat_keyword("WITHIN") {
            let n = match self.peek() {
                Some(Tok::Num(n)) if !n.starts_with('-') => n.clone(),
                _ => return Err(self.unexpected("a positive number of seconds after WITHIN")),
            };
            self.pos += 1;
            if !self.eat_keyword("SECONDS") {
                return Err(self.unexpected("SECONDS"));
            }
            return Ok(Some(Qualifier::Within(n)));
        }
        if self.eat_keyword("REPEATS") {
            let n = match self.peek() {
                Some(Tok::Num(n)) if n.bytes().all(|b| b.is_ascii_digit() || b == b'+') => {
                    n.clone()
                }
                _ => return Err(self.unexpected("a positive integer after REPEATS")),
            };
            self.pos += 1;
            if !self.eat_keyword("TIMES") {
                return Err(self.unexpected("TIMES"));
            }
            return Ok(Some(Qualifier::Repeats(n)));
        }
        if self.eat_keyword("START") {
            let start = self.time_literal("a timestamp t'...' after START")?;
            if !self.eat_keyword("STOP") {
                return Err(self.unexpected("STOP"));
            }
            let stop = self.time_literal("a timestamp t'...' after STOP")?;
            return Ok(Some(Qualifier::StartStop { start, stop }));
        }
        Ok(None)
    }

    fn time_literal(&mut self, what: &str) -> PResult<String> {
        match self.peek() {
            // Plain strings are tolerated: some producers forget the `t`.
            Some(Tok::Ts(s)) | Some(Tok::Str(s)) => {
                let s = s.clone();
                self.pos += 1;
                Ok(s)
            }
            _ => Err(self.unexpected(what)),
        }
    }

    fn comparison_or(&mut self, depth: usize) -> PResult<ComparisonExpr> {
        let mut items = vec![self.comparison_and(depth)?];
        while self.eat_keyword("OR") {
            items.push(self.comparison_and(depth)?);
        }
        Ok(collapse(items, ComparisonExpr::Or))
    }

    fn comparison_and(&mut self, depth: usize) -> PResult<ComparisonExpr> {
        let mut items = vec![self.prop_test(depth)?];
        while self.eat_keyword("AND") {
            items.push(self.prop_test(depth)?);
        }
        Ok(collapse(items, ComparisonExpr::And))
    }

    fn prop_test(&mut self, depth: usize) -> PResult<ComparisonExpr> {
        if self.peek() == Some(&Tok::LParen) {
            self.check_depth(depth + 1)?;
            self.pos += 1;
            let e = self.comparison_or(depth + 1)?;
            self.expect(Tok::RParen, "`)`")?;
            return Ok(e);
        }
        if self.eat_keyword("EXISTS") {
            return Ok(ComparisonExpr::Exists(self.object_path()?));
        }
        let offset = self.offset();
        let path = self.object_path()?;
        let negated = self.eat_keyword("NOT");
        let op = match self.peek() {
            Some(Tok::Cmp(op)) => *op,
            Some(Tok::Word(w)) => match w.to_ascii_uppercase().as_str() {
                "IN" => Operator::In,
                "LIKE" => Operator::Like,
                "MATCHES" => Operator::Matches,
                "ISSUBSET" => Operator::IsSubset,
                "ISSUPERSET" => Operator::IsSuperset,
                _ => return Err(self.unexpected("a comparison operator")),
            },
            _ => return Err(self.unexpected("a comparison operator")),
        };
        self.pos += 1;
        let operand = match op {
            Operator::In => Operand::Set(self.set_literal()?),
            Operator::Like | Operator::Matches | Operator::IsSubset | Operator::IsSuperset => {
                match self.peek() {
                    Some(Tok::Str(s)) => {
                        let s = s.clone();
                        self.pos += 1;
                        Operand::Single(Literal::Str(s))
                    }
                    _ => {
                        return Err(
                            self.unexpected(&format!("a string literal after {}", op.as_str()))
                        );
                    }
                }
            }
            _ => Operand::Single(self.primitive_literal()?),
        };
        Ok(ComparisonExpr::Test(Comparison {
            path,
            negated,
            op,
            operand,
            offset,
        }))
    }

    fn primitive_literal(&mut self) -> PResult<Literal> {
        let lit = match self.peek() {
            Some(Tok::Str(s)) => Literal::Str(s.clone()),
            Some(Tok::Num(n)) => Literal::Number(n.clone()),
            Some(Tok::Ts(s)) => Literal::Timestamp(s.clone()),
            Some(Tok::Bin(s)) => Literal::Binary(s.clone()),
            Some(Tok::Hex(s)) => Literal::Hex(s.clone()),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("true") => Literal::Bool(true),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("false") => Literal::Bool(false),
            _ => return Err(self.unexpected("a literal value")),
        };
        self.pos += 1;
        Ok(lit)
    }

    fn set_literal(&mut self) -> PResult<Vec<Literal>> {
        self.expect(Tok::LParen, "`(` to open the IN set")?;
        let mut items = Vec::new();
        if self.peek() == Some(&Tok::RParen) {
            self.pos += 1;
            return Ok(items);
        }
        loop {
            items.push(self.primitive_literal()?);
            match self.peek() {
                Some(Tok::Comma) => self.pos += 1,
                Some(Tok::RParen) => {
                    self.pos += 1;
                    return Ok(items);
                }
                _ => return Err(self.unexpected("`,` or `)` in the IN set")),
            }
        }
    }

    fn object_path(&mut self) -> PResult<ObjectPath> {
        let object_type = match self.peek() {
            Some(Tok::Word(w)) => w.to_ascii_lowercase(),
            _ => return Err(self.unexpected("an object path such as `ipv4-addr:value`")),
        };
        self.pos += 1;
        self.expect(Tok::Colon, "`:` after the object type")?;
        let mut components = vec![PathComponent::Property(
            self.path_name("a property name after `:`")?,
        )];
        loop {
            match self.peek() {
                Some(Tok::Dot) => {
                    self.pos += 1;
                    components.push(PathComponent::Property(
                        self.path_name("a property name after `.`")?,
                    ));
                }
                Some(Tok::LBrack) => {
                    self.pos += 1;
                    let idx = match self.peek() {
                        Some(Tok::Star) => None,
                        Some(Tok::Num(n)) => match n.parse::<i64>() {
                            Ok(v) => Some(v),
                            Err(_) => return Err(self.unexpected("a list index or `*`")),
                        },
                        _ => return Err(self.unexpected("a list index or `*`")),
                    };
                    self.pos += 1;
                    self.expect(Tok::RBrack, "`]` after the list index")?;
                    components.push(PathComponent::Index(idx));
                }
                _ => break,
            }
        }
        Ok(ObjectPath {
            object_type,
            components,
        })
    }

    fn path_name(&mut self, what: &str) -> PResult<String> {
        match self.peek() {
            Some(Tok::Word(w)) | Some(Tok::Str(w)) => {
                let w = w.clone();
                self.pos += 1;
                Ok(w)
            }
            _ => Err(self.unexpected(what)),
        }
    }
}

fn collapse<T>(mut items: Vec<T>, join: fn(Vec<T>) -> T) -> T {
    if items.len() == 1
        && let Some(one) = items.pop()
    {
        return one;
    }
    join(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmps(p: &str) -> Vec<String> {
        parse(p)
            .unwrap_or_else(|e| panic!("{p}: {e}"))
            .comparisons()
            .iter()
            .map(|c| c.to_string())
            .collect()
    }

    #[test]
    fn simple_and_compound() {
        assert_eq!(
            cmps("[ipv4-addr:value = '198.51.100.1']"),
            vec!["ipv4-addr:value = '198.51.100.1'"]
        );
        assert_eq!(
            cmps(
                "[network-traffic:dst_ref.type = 'ipv4-addr' AND network-traffic:dst_ref.value = '192.0.2.1']"
            )
            .len(),
            2
        );
        let p = "([domain-name:value = 'a.example'] OR [url:value = 'http://b.example/x']) \
                 FOLLOWEDBY [file:hashes.'SHA-256' = 'aa'] WITHIN 600 SECONDS";
        assert_eq!(cmps(p).len(), 3);
    }

    #[test]
    fn precedence() {
        let p = parse("[a:x = '1'] AND [a:x = '2'] OR [a:x = '3'] FOLLOWEDBY [a:x = '4']").unwrap();
        match p.root {
            ObservationExpr::FollowedBy(v) => {
                assert_eq!(v.len(), 2);
                assert!(matches!(v[0], ObservationExpr::Or(_)));
            }
            other => panic!("{other:?}"),
        }
        let p = parse("[a:x = '1' OR a:x = '2' AND a:y = '3']").unwrap();
        match p.root {
            ObservationExpr::Observation(ComparisonExpr::Or(v)) => {
                assert!(matches!(v[1], ComparisonExpr::And(_)))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn operators_and_literals() {
        let p = parse(
            "[ipv4-addr:value IN ('10.0.0.1', '10.0.0.2') AND ipv4-addr:value ISSUBSET '10.0.0.0/8' \
             AND file:name LIKE 'x%' AND file:name MATCHES '^a\\\\d$' AND ipv4-addr:value NOT = 'x' \
             AND file:size >= 10 AND file:size < -1.5 AND x:y = true AND x:z != h'ff' AND x:b = b'AAA=' \
             AND x:t = t'2024-01-01T00:00:00Z' AND EXISTS file:name AND x:s ISSUPERSET '1.2.3.4']",
        )
        .unwrap();
        let c = p.comparisons();
        assert_eq!(c.len(), 12);
        assert_eq!(
            c[0].operand,
            Operand::Set(vec![
                Literal::Str("10.0.0.1".into()),
                Literal::Str("10.0.0.2".into())
            ])
        );
        assert_eq!(c[3].operand, Operand::Single(Literal::Str("^a\\d$".into())));
        assert!(c[4].negated);
        assert_eq!(p.exists().len(), 1);
    }

    #[test]
    fn escapes_and_quoted_paths() {
        let p = parse(r"[file:name = 'it\'s \\ here' AND file:hashes.'SHA-256' = 'ab' AND file:hashes.MD5 = 'cd']")
            .unwrap();
        let c = p.comparisons();
        assert_eq!(
            c[0].operand,
            Operand::Single(Literal::Str(r"it's \ here".into()))
        );
        assert_eq!(c[1].path.properties(), vec!["hashes", "SHA-256"]);
        assert_eq!(c[2].path.properties(), vec!["hashes", "MD5"]);
        let p = parse("[file:extensions.'windows-pebinary-ext'.sections[*].entropy > 7]").unwrap();
        assert_eq!(p.comparisons()[0].path.components.len(), 5);
    }

    #[test]
    fn qualifiers() {
        parse("[a:b = 'c'] REPEATS 5 TIMES WITHIN 1.5 SECONDS").unwrap();
        parse("[a:b = 'c'] START t'2016-06-01T00:00:00Z' STOP t'2016-07-01T00:00:00Z'").unwrap();
        assert!(parse("[a:b = 'c'] WITHIN SECONDS").is_err());
        assert!(parse("[a:b = 'c'] REPEATS 2").is_err());
    }

    #[test]
    fn errors_have_positions() {
        let e = parse("[ipv4-addr:value = '1.2.3.4'").unwrap_err();
        assert_eq!(e.column, 29, "{e}");
        let e = parse("[ipv4-addr:value = '1.2.3.4]").unwrap_err();
        assert_eq!(e.column, 20, "{e}");
        assert!(e.message.contains("not closed"));
        let e = parse("[ipv4-addr:value ~ '1']").unwrap_err();
        assert_eq!(e.column, 18);
        let e = parse("[a:b = 'c'] [a:b = 'd']").unwrap_err();
        assert_eq!(e.column, 13);
        assert!(parse("").is_err());
        assert!(parse("[]").is_err());
        assert!(parse("[a:b = 'c'] AND").is_err());
        assert!(parse("[a:b IN ('c',)]").is_err());
    }

    #[test]
    fn nesting_is_limited() {
        let ok = format!("{}[a:b = 'c']{}", "(".repeat(60), ")".repeat(60));
        parse(&ok).unwrap();
        let deep = format!("{}[a:b = 'c']{}", "(".repeat(10_000), ")".repeat(10_000));
        let e = parse(&deep).unwrap_err();
        assert!(e.message.contains("nested deeper"), "{e}");
        let deep = format!("[{}a:b = 'c'{}]", "(".repeat(10_000), ")".repeat(10_000));
        assert!(parse(&deep).is_err());
        // Qualifier chains nest in the tree too.
        let many = format!("[a:b = 'c']{}", " WITHIN 1 SECONDS".repeat(100_000));
        let e = parse(&many).unwrap_err();
        assert!(e.message.contains("qualifiers"), "{e}");
        // Long flat chains are fine: they are lists, not nesting.
        let flat = vec!["[a:b = 'c']"; 50_000].join(" OR ");
        assert_eq!(parse(&flat).unwrap().comparisons().len(), 50_000);
        let flat = format!("[{}]", vec!["a:b = 'c'"; 50_000].join(" AND "));
        assert_eq!(parse(&flat).unwrap().comparisons().len(), 50_000);
    }
}

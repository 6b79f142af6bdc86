//! ddb's expression language: what `print`, `x` and `trace` take as an address.
//!
//! ```text
//!   expr    := or
//!   or      := xor  ( '|' xor )*
//!   xor     := and  ( '^' and )*
//!   and     := shift ( '&' shift )*
//!   shift   := add  ( ('<<' | '>>') add )*
//!   add     := mul  ( ('+' | '-') mul )*
//!   mul     := unary ( ('*' | '/' | '%') unary )*          % is the remainder, as in ddb
//!   unary   := ('-' | '~' | '+' | '*') unary | primary     *e reads the 8 bytes at e
//!   primary := number | symbol | "quoted symbol" | $register | '.' | '(' expr ')'
//! ```
//!
//! Precedence is C's (ddb's own grammar binds `&` with `*` and `|` with `+`; C's is what people
//! type today). Numbers are in radix 16 unless prefixed — `0x` hex, `0t` decimal, `0o` octal,
//! `0b` binary — as in ddb(4). A word that starts with a letter is a symbol (full demangled path,
//! raw ELF name or a unique `::` suffix); when no single symbol has that name but the word is
//! made of hex digits, it is a number (`deadbeef`). `.` is dot, the last address examined.
//! Arithmetic is unsigned 64-bit and wraps; shifts of 64 or more give 0.

use crate::image::KernelImage;
use crate::symtab::LookupError;
use crate::target::{RegisterSet, Target};

/// Why an expression has no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    #[error("expression expected")]
    Empty,
    #[error("syntax error at '{0}'")]
    Syntax(String),
    #[error("syntax error: expression ends too early")]
    UnexpectedEnd,
    #[error("missing ')'")]
    MissingParen,
    #[error("bad number '{0}'")]
    BadNumber(String),
    #[error("unterminated quoted symbol")]
    UnterminatedQuote,
    #[error(transparent)]
    Symbol(#[from] LookupError),
    #[error("unknown register '${0}'")]
    UnknownRegister(String),
    #[error("no registers: no cpu is selected")]
    NoRegisters,
    #[error("expression nested too deeply")]
    TooDeep,
    #[error("division by zero")]
    DivisionByZero,
    #[error(transparent)]
    Read(#[from] crate::target::ReadError),
}

/// What names in an expression refer to.
pub struct Env<'a> {
    pub image: &'a KernelImage,
    pub target: &'a dyn Target,
    /// The selected CPU's registers, for `$rip` and friends.
    pub registers: Option<&'a RegisterSet>,
    /// Value of `.`.
    pub dot: u64,
}

/// Evaluate `text` as one whole expression.
pub fn evaluate(env: &Env<'_>, text: &str) -> Result<u64, ExprError> {
    let tokens = lex(text)?;
    if tokens.is_empty() {
        return Err(ExprError::Empty);
    }
    let mut parser = Parser { env, tokens: &tokens, pos: 0, depth: 0 };
    let value = parser.or()?;
    match parser.tokens.get(parser.pos) {
        None => Ok(value),
        Some(tok) => Err(ExprError::Syntax(tok.to_string())),
    }
}

/// Parse a number the way the lexer does (radix 16 unless prefixed).
pub fn parse_number(word: &str) -> Result<u64, ExprError> {
    let lower = word.to_ascii_lowercase();
    let (radix, digits) = match lower.get(..2) {
        Some("0x") => (16, &lower[2..]),
        Some("0t") => (10, &lower[2..]),
        Some("0o") => (8, &lower[2..]),
        Some("0b") => (2, &lower[2..]),
        _ => (16, lower.as_str()),
    };
    if digits.is_empty() {
        return Err(ExprError::BadNumber(word.to_string()));
    }
    u64::from_str_radix(digits, radix).map_err(|_| ExprError::BadNumber(word.to_string()))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Number(u64),
    Name(String),
    Quoted(String),
    Register(String),
    Dot,
    Op(&'static str),
    Open,
    Close,
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Token::Number(n) => write!(f, "{n:#x}"),
            Token::Name(s) => f.write_str(s),
            Token::Quoted(s) => write!(f, "\"{s}\""),
            Token::Register(s) => write!(f, "${s}"),
            Token::Dot => f.write_str("."),
            Token::Op(s) => f.write_str(s),
            Token::Open => f.write_str("("),
            Token::Close => f.write_str(")"),
        }
    }
}

const OPERATORS: [&str; 12] = ["<<", ">>", "+", "-", "*", "/", "%", "&", "|", "^", "~", "!"];

fn lex(text: &str) -> Result<Vec<Token>, ExprError> {
    let mut tokens = Vec::new();
    let mut rest = text.trim_start();
    while let Some(c) = rest.chars().next() {
        let (token, len) = if c.is_ascii_digit() {
            let len = word_len(rest, false);
            (Token::Number(parse_number(&rest[..len])?), len)
        } else if c.is_ascii_alphabetic() || c == '_' {
            let len = word_len(rest, true);
            (Token::Name(rest[..len].to_string()), len)
        } else if c == '$' {
            let len = 1 + word_len(&rest[1..], false);
            (Token::Register(rest[1..len].to_ascii_lowercase()), len)
        } else if c == '"' {
            let end = rest[1..].find('"').ok_or(ExprError::UnterminatedQuote)?;
            (Token::Quoted(rest[1..=end].to_string()), end + 2)
        } else if c == '.' {
            (Token::Dot, 1)
        } else if c == '(' {
            (Token::Open, 1)
        } else if c == ')' {
            (Token::Close, 1)
        } else if let Some(op) = OPERATORS.iter().find(|op| rest.starts_with(**op)) {
            (Token::Op(op), op.len())
        } else {
            return Err(ExprError::Syntax(c.to_string()));
        };
        tokens.push(token);
        rest = rest[len..].trim_start();
    }
    Ok(tokens)
}

/// Length of the word at the start of `s`: letters, digits, `_`, and (in names) `::` joints.
fn word_len(s: &str, path: bool) -> usize {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' {
            i += 1;
        } else if path
            && bytes[i..].starts_with(b"::")
            && bytes.get(i + 2).is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
        {
            i += 2;
        } else {
            break;
        }
    }
    i
}

/// How deeply parentheses and unary operators may nest (the parser recurses on a CPU's stack).
const MAX_DEPTH: usize = 100;

struct Parser<'p, 'e> {
    env: &'p Env<'e>,
    tokens: &'p [Token],
    pos: usize,
    depth: usize,
}

type BinOp = fn(u64, u64) -> Result<u64, ExprError>;

impl Parser<'_, '_> {
    fn peek_op(&self, ops: &[&str]) -> Option<&'static str> {
        match self.tokens.get(self.pos) {
            Some(Token::Op(op)) if ops.contains(op) => Some(op),
            _ => None,
        }
    }

    /// One left-associative precedence level.
    fn level(&mut self, ops: &[&str], next: fn(&mut Self) -> Result<u64, ExprError>) -> Result<u64, ExprError> {
        let mut value = next(self)?;
        while let Some(op) = self.peek_op(ops) {
            self.pos += 1;
            let rhs = next(self)?;
            let apply: BinOp = binary(op);
            value = apply(value, rhs)?;
        }
        Ok(value)
    }

    fn or(&mut self) -> Result<u64, ExprError> {
        self.level(&["|"], Self::xor)
    }

    fn xor(&mut self) -> Result<u64, ExprError> {
        self.level(&["^"], Self::and)
    }

    fn and(&mut self) -> Result<u64, ExprError> {
        self.level(&["&"], Self::shift)
    }

    fn shift(&mut self) -> Result<u64, ExprError> {
        self.level(&["<<", ">>"], Self::add)
    }

    fn add(&mut self) -> Result<u64, ExprError> {
        self.level(&["+", "-"], Self::mul)
    }

    fn mul(&mut self) -> Result<u64, ExprError> {
        self.level(&["*", "/", "%"], Self::unary)
    }

    fn unary(&mut self) -> Result<u64, ExprError> {
        if self.depth >= MAX_DEPTH {
            return Err(ExprError::TooDeep);
        }
        self.depth += 1;
        let value = self.unary_inner();
        self.depth -= 1;
        value
    }

    fn unary_inner(&mut self) -> Result<u64, ExprError> {
        if let Some(op) = self.peek_op(&["-", "~", "+", "*", "!"]) {
            self.pos += 1;
            let value = self.unary()?;
            return match op {
                "-" => Ok(value.wrapping_neg()),
                "~" => Ok(!value),
                "!" => Ok(u64::from(value == 0)),
                "*" => {
                    let mut buf = [0u8; 8];
                    self.env.target.read_memory(value, &mut buf)?;
                    Ok(u64::from_le_bytes(buf))
                }
                _ => Ok(value),
            };
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<u64, ExprError> {
        let token = self.tokens.get(self.pos).ok_or(ExprError::UnexpectedEnd)?;
        self.pos += 1;
        match token {
            Token::Number(n) => Ok(*n),
            Token::Dot => Ok(self.env.dot),
            Token::Quoted(name) => Ok(self.env.image.resolve(name)?),
            Token::Name(name) => self.name(name),
            Token::Register(name) => {
                let regs = self.env.registers.ok_or(ExprError::NoRegisters)?;
                regs.get(name).ok_or_else(|| ExprError::UnknownRegister(name.clone()))
            }
            Token::Open => {
                let value = self.or()?;
                match self.tokens.get(self.pos) {
                    Some(Token::Close) => {
                        self.pos += 1;
                        Ok(value)
                    }
                    Some(other) => Err(ExprError::Syntax(other.to_string())),
                    None => Err(ExprError::MissingParen),
                }
            }
            Token::Close | Token::Op(_) => Err(ExprError::Syntax(token.to_string())),
        }
    }

    /// A symbol, or a hex number spelled with a leading letter.
    fn name(&self, name: &str) -> Result<u64, ExprError> {
        match self.env.image.resolve(name) {
            Ok(addr) => Ok(addr),
            Err(e) => match u64::from_str_radix(name, 16) {
                Ok(n) => Ok(n),
                Err(_) => Err(e.into()),
            },
        }
    }
}

fn binary(op: &str) -> BinOp {
    match op {
        "|" => |a, b| Ok(a | b),
        "^" => |a, b| Ok(a ^ b),
        "&" => |a, b| Ok(a & b),
        "<<" => |a, b| Ok(u32::try_from(b).ok().and_then(|b| a.checked_shl(b)).unwrap_or(0)),
        ">>" => |a, b| Ok(u32::try_from(b).ok().and_then(|b| a.checked_shr(b)).unwrap_or(0)),
        "+" => |a, b| Ok(a.wrapping_add(b)),
        "-" => |a, b| Ok(a.wrapping_sub(b)),
        "*" => |a, b| Ok(a.wrapping_mul(b)),
        "/" => |a, b| a.checked_div(b).ok_or(ExprError::DivisionByZero),
        _ => |a, b| a.checked_rem(b).ok_or(ExprError::DivisionByZero),
    }
}

/// Split `x`-style arguments `addr[,count]` at the first comma outside quotes.
pub fn split_count(args: &str) -> (&str, Option<&str>) {
    let mut quoted = false;
    for (i, c) in args.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => return (args[..i].trim(), Some(args[i + 1..].trim())),
            _ => {}
        }
    }
    (args.trim(), None)
}

#[cfg(test)]
mod tests;

//! Turns one answer's text (LaTeX or plain) into tokens.
//!
//! Layout-only LaTeX (`\left`, `\right`, `\displaystyle`, spacing commands, `^\circ`) is dropped
//! first; unicode math symbols are mapped to their LaTeX names. Numbers are read whole here, so
//! the parser never sees digit fragments: thousands separators (`1,000`, `1{,}000`, `1\,000`,
//! `1 000`; the comma and plain-space forms only outside brackets, where `(100,200)` is a pair),
//! decimals (`.5`), scientific notation (`1e-3`) and repeating decimals (`0.\overline{3}`).

use super::expr::Rational;

/// A number literal: its value, exact when it fits, and the fractional digits as written (for
/// "rounded to the reference's precision").
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NumLit {
    /// The exact value, when it fits an `i128` rational and is not in scientific notation.
    pub exact: Option<Rational>,
    /// The value as an `f64`.
    pub value: f64,
    /// Digits after the decimal point as written (0 for integers and repeating decimals).
    pub frac_digits: u32,
}

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// A number.
    Num(NumLit),
    /// A run of latin letters (`x`, `sin`, `cm`, `or`).
    Word(String),
    /// A LaTeX command by name, without the backslash (`frac`, `pi`, `alpha`, `infty`).
    Cmd(String),
    /// The content of `\text{…}` (and `\mbox`, `\textbf`, …), or a multi-letter `\mathrm{…}`.
    Text(String),
    /// A one-character operator or punctuation: `+ - * / ^ _ ! ' = < > | & , ; :`.
    Op(char),
    /// `\le`.
    Le,
    /// `\ge`.
    Ge,
    /// `\ne`.
    Ne,
    /// `\pm`.
    Pm,
    /// `\cup`.
    Cup,
    /// `%` or `\%`.
    Percent,
    /// `(`, `[` or `{`.
    Open(char),
    /// `)`, `]` or `}`.
    Close(char),
    /// `\{`.
    SetOpen,
    /// `\}`.
    SetClose,
    /// `\\` (a matrix row break).
    RowSep,
    /// `\begin{env}`.
    Begin(String),
    /// `\end{env}`.
    End(String),
}

/// A token and whether whitespace came right before it (`3 4` is two numbers, not `34`).
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// The token.
    pub tok: Tok,
    /// Whether whitespace preceded it.
    pub space_before: bool,
}

/// Why an answer could not be tokenised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexError(pub String);

/// A thousands separator written `{,}` (mapped before lexing).
const THOUSANDS_COMMA: char = '\u{E000}';
/// A thin space `\,` (a thousands separator between digit groups, else a space).
const THIN_SPACE: char = '\u{E001}';

/// Drops layout-only LaTeX and maps unicode math symbols to LaTeX.
pub fn prepare(s: &str) -> String {
    let mut t = s.to_string();
    for (from, to) in [
        ("{,}", "\u{E000}"),
        ("\\,", "\u{E001}"),
        ("\\!", ""),
        ("\\;", " "),
        ("\\:", " "),
        ("\\qquad", " "),
        ("\\quad", " "),
        ("~", " "),
        ("**", ""),
        ("^{\\circ}", ""),
        ("^\\circ", ""),
        ("^{\\degree}", ""),
        ("\\degree", ""),
        ("\\circ", ""),
        ("°", ""),
        ("\\displaystyle", ""),
        ("\\dfrac", "\\frac"),
        ("\\tfrac", "\\frac"),
        ("\\cfrac", "\\frac"),
        ("\\tbinom", "\\binom"),
        ("\\dbinom", "\\binom"),
        ("\u{2212}", "-"),
        ("\u{2013}", "-"),
        ("×", "*"),
        ("·", "*"),
        ("÷", "/"),
        ("π", "\\pi "),
        ("∞", "\\infty "),
        ("²", "^2"),
        ("³", "^3"),
        ("½", "(1/2)"),
        ("≤", "\\le "),
        ("≥", "\\ge "),
        ("≠", "\\ne "),
        ("√", "\\sqrt "),
        ("∪", "\\cup "),
        ("±", "\\pm "),
        ("…", "\\ldots "),
        ("<=", "\\le "),
        (">=", "\\ge "),
        ("!=", "\\ne "),
    ] {
        if t.contains(from) {
            t = t.replace(from, to);
        }
    }
    t
}

/// Commands that only change layout or size; skipped.
const LAYOUT: &[&str] = &[
    "left",
    "right",
    "big",
    "Big",
    "bigg",
    "Bigg",
    "bigl",
    "bigr",
    "Bigl",
    "Bigr",
    "biggl",
    "biggr",
    "Biggl",
    "Biggr",
    "limits",
    "nolimits",
    "mathbf",
    "mathit",
    "boldsymbol",
    "bm",
    "mathnormal",
    "textstyle",
    "scriptstyle",
    "phantom",
    "hline",
    "cdotp",
];

struct Lexer {
    chars: Vec<char>,
    pos: usize,
    depth: i32,
    out: Vec<Token>,
    space: bool,
}

impl Lexer {
    fn peek(&self, k: usize) -> Option<char> {
        self.chars.get(self.pos + k).copied()
    }

    fn push(&mut self, tok: Tok) {
        match tok {
            Tok::Open(_) | Tok::SetOpen | Tok::Begin(_) => self.depth += 1,
            Tok::Close(_) | Tok::SetClose | Tok::End(_) => self.depth -= 1,
            _ => {}
        }
        self.out.push(Token {
            tok,
            space_before: self.space,
        });
        self.space = false;
    }

    /// Reads `{…}` (braces balanced) after a command; `None` when no group follows.
    fn group(&mut self) -> Option<String> {
        let mut p = self.pos;
        while self.chars.get(p) == Some(&' ') {
            p += 1;
        }
        if self.chars.get(p) != Some(&'{') {
            return None;
        }
        let mut depth = 0;
        let start = p + 1;
        while p < self.chars.len() {
            match self.chars[p] {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        self.pos = p + 1;
                        return Some(self.chars[start..p].iter().collect());
                    }
                }
                _ => {}
            }
            p += 1;
        }
        None
    }

    fn digits(&mut self) -> String {
        let mut s = String::new();
        while let Some(c) = self.peek(0).filter(char::is_ascii_digit) {
            s.push(c);
            self.pos += 1;
        }
        s
    }

    /// Whether a thousands group (exactly three digits, not followed by a digit) starts at
    /// `pos + k`.
    fn group_of_three_at(&self, k: usize) -> bool {
        (0..3).all(|i| self.peek(k + i).is_some_and(|c| c.is_ascii_digit()))
            && !self.peek(k + 3).is_some_and(|c| c.is_ascii_digit())
    }

    fn number(&mut self) -> Result<(), LexError> {
        let mut int = self.digits();
        // Thousands groups, only after a first group of 1–3 digits.
        if (1..=3).contains(&int.len()) {
            loop {
                let sep = self.peek(0);
                let allowed = match sep {
                    Some(THOUSANDS_COMMA) | Some(THIN_SPACE) => true,
                    Some(',') | Some(' ') => self.depth == 0,
                    _ => false,
                };
                if allowed && self.group_of_three_at(1) {
                    // "1 000" but not "1 000.5 2" style runs of spaced numbers: a plain space
                    // group must not be followed by `.digit`.
                    if sep == Some(' ')
                        && self.peek(4) == Some('.')
                        && self.peek(5).is_some_and(|c| c.is_ascii_digit())
                    {
                        break;
                    }
                    self.pos += 1;
                    int.push_str(&self.digits());
                } else {
                    break;
                }
            }
        }
        let mut frac = String::new();
        let mut repeat = String::new();
        if self.peek(0) == Some('.') {
            let after = self.peek(1);
            if after.is_some_and(|c| c.is_ascii_digit()) {
                self.pos += 1;
                frac = self.digits();
            } else if after == Some('\\') {
                self.pos += 1;
            }
            if self.peek(0) == Some('\\') {
                let rest: String = self.chars[self.pos..].iter().take(10).collect();
                let cmd = ["\\overline", "\\bar", "\\dot"]
                    .into_iter()
                    .find(|c| rest.starts_with(c));
                if let Some(cmd) = cmd {
                    let save = self.pos;
                    self.pos += cmd.chars().count();
                    match self.group() {
                        Some(g) if !g.is_empty() && g.chars().all(|c| c.is_ascii_digit()) => {
                            repeat = g
                        }
                        _ => self.pos = save,
                    }
                }
            }
            if frac.is_empty() && repeat.is_empty() && int.is_empty() {
                return Err(LexError("a lone `.`".into()));
            }
        }
        let mut exp: i32 = 0;
        if matches!(self.peek(0), Some('e' | 'E')) {
            let (sign_len, sign) = match self.peek(1) {
                Some('-') => (1, -1),
                Some('+') => (1, 1),
                _ => (0, 1),
            };
            let first = self.peek(1 + sign_len);
            if first.is_some_and(|c| c.is_ascii_digit()) {
                let save = self.pos;
                self.pos += 1 + sign_len;
                let d = self.digits();
                if self.peek(0).is_some_and(|c| c.is_ascii_alphabetic()) {
                    self.pos = save;
                } else {
                    exp = sign * d.parse::<i32>().unwrap_or(i32::MAX / 2).min(100_000);
                }
            }
        }
        self.push(Tok::Num(literal(&int, &frac, &repeat, exp)));
        Ok(())
    }

    fn command(&mut self) -> Result<(), LexError> {
        self.pos += 1; // the backslash
        let Some(c) = self.peek(0) else {
            return Err(LexError("a lone `\\`".into()));
        };
        if !c.is_ascii_alphabetic() {
            self.pos += 1;
            match c {
                '{' => self.push(Tok::SetOpen),
                '}' => self.push(Tok::SetClose),
                '%' => self.push(Tok::Percent),
                '$' => {}
                '\\' => self.push(Tok::RowSep),
                '|' => self.push(Tok::Op('|')),
                '(' | ')' | '[' | ']' => {}
                '#' | '&' | '_' => {}
                _ => self.space = true,
            }
            return Ok(());
        }
        let mut name = String::new();
        while let Some(c) = self.peek(0).filter(char::is_ascii_alphabetic) {
            name.push(c);
            self.pos += 1;
        }
        if LAYOUT.contains(&name.as_str()) {
            if matches!(name.as_str(), "left" | "right") && self.peek(0) == Some('.') {
                self.pos += 1;
            }
            return Ok(());
        }
        let tok = match name.as_str() {
            "le" | "leq" | "leqslant" => Tok::Le,
            "ge" | "geq" | "geqslant" => Tok::Ge,
            "ne" | "neq" => Tok::Ne,
            "lt" => Tok::Op('<'),
            "gt" => Tok::Op('>'),
            "pm" | "mp" => Tok::Pm,
            "cup" => Tok::Cup,
            "times" | "cdot" | "ast" => Tok::Op('*'),
            "div" => Tok::Op('/'),
            "lvert" | "rvert" | "vert" | "lVert" | "rVert" => Tok::Op('|'),
            "lbrace" => Tok::SetOpen,
            "rbrace" => Tok::SetClose,
            "langle" => Tok::Open('('),
            "rangle" => Tok::Close(')'),
            "text" | "textbf" | "textrm" | "textit" | "textnormal" | "texttt" | "textsf"
            | "mbox" | "hbox" | "emph" => {
                let g = self
                    .group()
                    .ok_or_else(|| LexError(format!("`\\{name}` without `{{}}`")))?;
                Tok::Text(g)
            }
            "mathrm" | "operatorname" | "mathsf" | "mathtt" => {
                let save = self.pos;
                match self.group() {
                    Some(g)
                        if g.chars().count() >= 2
                            && g.chars().all(|c| c.is_ascii_alphabetic() || c == ' ') =>
                    {
                        if name == "operatorname" {
                            Tok::Word(g.trim().to_string())
                        } else {
                            Tok::Text(g)
                        }
                    }
                    _ => {
                        self.pos = save;
                        return Ok(());
                    }
                }
            }
            "begin" | "end" => {
                let env = self
                    .group()
                    .ok_or_else(|| LexError(format!("`\\{name}` without an environment")))?;
                if name == "begin" {
                    if env == "array" {
                        let _ = self.group(); // the column spec
                    }
                    Tok::Begin(env)
                } else {
                    Tok::End(env)
                }
            }
            _ => Tok::Cmd(name),
        };
        self.push(tok);
        Ok(())
    }

    fn run(mut self) -> Result<Vec<Token>, LexError> {
        while let Some(c) = self.peek(0) {
            match c {
                ' ' | '\t' | '\n' | '\r' | THIN_SPACE => {
                    self.space = true;
                    self.pos += 1;
                }
                THOUSANDS_COMMA => {
                    self.pos += 1;
                    self.push(Tok::Op(','));
                }
                '0'..='9' => self.number()?,
                '.' if self.peek(1).is_some_and(|c| c.is_ascii_digit()) => self.number()?,
                '\\' => self.command()?,
                'a'..='z' | 'A'..='Z' => {
                    let mut w = String::new();
                    while let Some(c) = self.peek(0).filter(char::is_ascii_alphabetic) {
                        w.push(c);
                        self.pos += 1;
                    }
                    self.push(Tok::Word(w));
                }
                '(' | '[' | '{' => {
                    self.pos += 1;
                    self.push(Tok::Open(c));
                }
                ')' | ']' | '}' => {
                    self.pos += 1;
                    self.push(Tok::Close(c));
                }
                '%' => {
                    self.pos += 1;
                    self.push(Tok::Percent);
                }
                '$' => self.pos += 1,
                '+' | '-' | '*' | '/' | '^' | '_' | '!' | '\'' | '=' | '<' | '>' | '|' | '&'
                | ',' | ';' | ':' | '.' | '?' => {
                    self.pos += 1;
                    self.push(Tok::Op(c));
                }
                other => {
                    return Err(LexError(format!("unexpected character `{other}`")));
                }
            }
        }
        Ok(self.out)
    }
}

/// The value of `int.frac(repeat) × 10^exp`, exact when it fits.
fn literal(int: &str, frac: &str, repeat: &str, exp: i32) -> NumLit {
    let text = format!(
        "{}.{}e{}",
        if int.is_empty() { "0" } else { int },
        if frac.is_empty() { "0" } else { frac },
        exp
    );
    let exact = (|| {
        let ten = Rational::int(10);
        let base: i128 = format!("{int}{frac}")
            .trim_start_matches('0')
            .parse()
            .or_else(|_| {
                if format!("{int}{frac}").chars().all(|c| c == '0') {
                    Ok(0)
                } else {
                    Err(())
                }
            })
            .ok()?;
        let mut v = Rational::new(base, ten.checked_pow(frac.len() as i128)?.num)?;
        if !repeat.is_empty() {
            let r: i128 = repeat.parse().ok()?;
            let den = ten.checked_pow(frac.len() as i128)?.checked_mul(
                ten.checked_pow(repeat.len() as i128)?
                    .checked_sub(Rational::int(1))?,
            )?;
            v = v.checked_add(Rational::int(r).checked_div(den)?)?;
        }
        v.checked_mul(ten.checked_pow(exp as i128)?)
    })();
    // Scientific notation is an approximation (`1.2676506e30`): compared with tolerance.
    let exact = exact.filter(|_| exp == 0);
    let value = match exact {
        Some(r) => r.to_f64(),
        None => text.parse::<f64>().unwrap_or(f64::NAN),
    };
    NumLit {
        exact,
        value,
        frac_digits: if repeat.is_empty() && exp == 0 {
            frac.len() as u32
        } else {
            0
        },
    }
}

/// Tokenises prepared text (see [`prepare`]).
pub fn lex(s: &str) -> Result<Vec<Token>, LexError> {
    Lexer {
        chars: s.chars().collect(),
        pos: 0,
        depth: 0,
        out: Vec::new(),
        space: false,
    }
    .run()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nums(s: &str) -> Vec<f64> {
        lex(&prepare(s))
            .unwrap()
            .into_iter()
            .filter_map(|t| match t.tok {
                Tok::Num(n) => Some(n.value),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn numbers_are_read_whole() {
        assert_eq!(nums("1,000"), [1000.0]);
        assert_eq!(nums("1{,}000{,}000"), [1e6]);
        assert_eq!(nums("1\\,000"), [1000.0]);
        assert_eq!(nums("1 000"), [1000.0]);
        assert_eq!(nums("(100,200)"), [100.0, 200.0]);
        assert_eq!(nums("1,23"), [1.0, 23.0]);
        assert_eq!(nums(".5"), [0.5]);
        assert_eq!(nums("2.5E+2"), [250.0]);
        assert_eq!(nums("3 4"), [3.0, 4.0]);
        let third = lex("0.\\overline{3}").unwrap();
        let Tok::Num(n) = third[0].tok else { panic!() };
        assert_eq!(n.exact, Rational::new(1, 3));
        let sixth = lex("0.1\\overline{6}").unwrap();
        let Tok::Num(n) = sixth[0].tok else { panic!() };
        assert_eq!(n.exact, Rational::new(1, 6));
    }

    #[test]
    fn exact_literals_and_precision() {
        let t = lex("0.125").unwrap();
        let Tok::Num(n) = t[0].tok else { panic!() };
        assert_eq!(n.exact, Rational::new(1, 8));
        assert_eq!(n.frac_digits, 3);
        let big = lex("1e400").unwrap();
        let Tok::Num(n) = big[0].tok else { panic!() };
        assert_eq!(n.exact, None);
        assert!(n.value.is_infinite());
    }

    #[test]
    fn text_and_layout() {
        let t: Vec<Tok> = lex(&prepare("\\left( 5 \\text{ cm}\\right)"))
            .unwrap()
            .into_iter()
            .map(|t| t.tok)
            .collect();
        assert_eq!(t[0], Tok::Open('('));
        assert_eq!(t[2], Tok::Text(" cm".into()));
        assert_eq!(t[3], Tok::Close(')'));
    }
}

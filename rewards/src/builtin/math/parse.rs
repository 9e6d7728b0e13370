//! A recursive-descent parser from tokens to an [`Expr`], with size limits.
//!
//! Precedence, loosest first: `,`/`;` (a bare list) < `\cup` < relations (`=`, `<`, `\le`, …,
//! chained) < `+ - \pm` < `· × / :` and implicit multiplication < unary sign < `^` (right
//! associative) < postfix `!` and `%` < atoms.
//!
//! Atoms: numbers, `\pi`, `e`, `\infty`, variables (`x`, `x_1`, `\alpha`), brackets
//! (`(a)` groups, `(a, b)` is a tuple or an open interval, `[a, b)`/`(a, b]`/`[a, b]` are
//! intervals, `[a, b, c]` a list), `\{…\}` sets, `|a|`, `\frac`, `\sqrt[n]{}`, `\binom`,
//! functions (`\sin x`, `\sin^2 x`, `\log_2 8`, `\ln(x)`, plain `sin(x)`), matrices
//! (`pmatrix`, `bmatrix`, `Bmatrix`, `matrix`, `smallmatrix`, `array`).
//!
//! Two numbers side by side (`3 4`) are an error, not a product: it is how a list of
//! candidates looks. An integer right before a fraction of integers is a mixed number
//! (`2\frac{1}{2}`, `2 1/2`). A trailing word after a complete expression is a unit and is
//! dropped (`5 \text{ cm}`, `12 apples`). `or`/`and` between items make a set of alternatives
//! (`x = 2 or x = 3`), which never equals a single value; `maybe`, `perhaps`, `either` are
//! hedging and no answer.

use super::expr::{Expr, Func, RelOp};
use super::lexer::{NumLit, Tok, Token, lex, prepare};

/// Why an answer did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Not a well-formed answer.
    Invalid(String),
    /// More than one candidate (`3 or 4`, `x = 1 and y = 2` in words).
    Hedge(String),
    /// Over a size limit: a clear quarantine, never a hang.
    TooLarge(String),
}

/// Size limits of one parse.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most tree nodes.
    pub max_nodes: usize,
    /// Deepest nesting.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_nodes: 2_000,
            max_depth: 64,
        }
    }
}

/// Multi-letter words read as units after a number (single letters stay variables).
const UNITS: &[&str] = &[
    "cm", "mm", "km", "nm", "kg", "mg", "ft", "yd", "mi", "in", "lb", "lbs", "oz", "ml", "mL",
    "hr", "hrs", "min", "mins", "sec", "secs", "ms", "mph", "kph", "deg", "rad", "sq", "st", "nd",
    "rd", "th", "km", "cc", "am", "pm", "AM", "PM", "kWh", "Hz", "kHz", "Pa", "kPa",
];

/// One-letter units, read as units only after a constant, spaced, at the end (`1200 m`).
const SHORT_UNITS: &[&str] = &["m", "g", "s", "h", "L", "V", "W", "J", "N", "K"];

fn is_function_word(w: &str) -> Option<Func> {
    Some(match w {
        "sin" => Func::Sin,
        "cos" => Func::Cos,
        "tan" | "tg" => Func::Tan,
        "cot" | "ctg" => Func::Cot,
        "sec" => Func::Sec,
        "csc" | "cosec" => Func::Csc,
        "arcsin" | "asin" => Func::Asin,
        "arccos" | "acos" => Func::Acos,
        "arctan" | "atan" => Func::Atan,
        "sinh" => Func::Sinh,
        "cosh" => Func::Cosh,
        "tanh" => Func::Tanh,
        "ln" | "log" => Func::Ln,
        "exp" => Func::Exp,
        "sqrt" => Func::Sqrt,
        "abs" => Func::Abs,
        "floor" => Func::Floor,
        "ceil" => Func::Ceil,
        _ => return None,
    })
}

const GREEK: &[&str] = &[
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "varepsilon",
    "zeta",
    "eta",
    "theta",
    "vartheta",
    "iota",
    "kappa",
    "lambda",
    "mu",
    "nu",
    "xi",
    "rho",
    "sigma",
    "tau",
    "upsilon",
    "phi",
    "varphi",
    "chi",
    "psi",
    "omega",
    "Gamma",
    "Delta",
    "Theta",
    "Lambda",
    "Xi",
    "Sigma",
    "Phi",
    "Psi",
    "Omega",
];

/// Words that mean "one of several answers".
const HEDGES: &[&str] = &["or", "and", "nor", "either", "maybe", "perhaps", "possibly"];

/// Whether a word marks hedging (`or`, `and`, `maybe`, …).
pub fn is_hedge_word(w: &str) -> bool {
    HEDGES.iter().any(|h| h.eq_ignore_ascii_case(w))
}

/// Whether a word is a math name (function, constant) rather than prose.
pub fn is_math_word(w: &str) -> bool {
    is_function_word(w).is_some() || matches!(w, "pi" | "e" | "inf" | "infty" | "infinity" | "oo")
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    nodes: usize,
    depth: usize,
    limits: Limits,
}

type PResult = Result<Expr, ParseError>;

fn invalid(msg: impl Into<String>) -> ParseError {
    ParseError::Invalid(msg.into())
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }

    fn peek_at(&self, k: usize) -> Option<&Tok> {
        self.toks.get(self.pos + k).map(|t| &t.tok)
    }

    fn space_before(&self) -> bool {
        self.toks.get(self.pos).is_some_and(|t| t.space_before)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|t| t.tok.clone());
        self.pos += 1;
        t
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if self.peek() == Some(tok) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, tok: &Tok) -> Result<(), ParseError> {
        if self.eat(tok) {
            Ok(())
        } else {
            Err(invalid(format!(
                "expected {tok:?}, found {:?}",
                self.peek()
            )))
        }
    }

    /// Counts a node against the limit.
    fn node(&mut self, e: Expr) -> PResult {
        self.nodes += 1;
        if self.nodes > self.limits.max_nodes {
            return Err(ParseError::TooLarge(format!(
                "the answer has more than {} terms",
                self.limits.max_nodes
            )));
        }
        Ok(e)
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > self.limits.max_depth {
            return Err(ParseError::TooLarge(format!(
                "the answer nests deeper than {} levels",
                self.limits.max_depth
            )));
        }
        Ok(())
    }

    /// A list separator: `Some(false)` for `,`/`;`, `Some(true)` for `or`/`and` (in words or
    /// `\text{}`).
    fn separator(&self) -> Option<bool> {
        match self.peek()? {
            Tok::Op(',' | ';') => Some(false),
            Tok::Word(w) if w == "or" || w == "and" => Some(true),
            Tok::Text(t) if matches!(t.trim(), "or" | "and") => Some(true),
            _ => None,
        }
    }

    /// A bare list `a, b, …`; with `or`/`and` between items (`x = 2 or x = 3`) it is a set of
    /// alternatives, which never equals a single value.
    fn list(&mut self) -> PResult {
        let first = self.union()?;
        if self.separator().is_none() {
            return Ok(first);
        }
        let mut items = vec![first];
        let mut alternatives = false;
        while let Some(words) = self.separator() {
            self.pos += 1;
            alternatives |= words;
            items.push(self.union()?);
        }
        self.node(if alternatives {
            Expr::Set(items)
        } else {
            Expr::List(items)
        })
    }

    fn union(&mut self) -> PResult {
        let first = self.relation()?;
        if self.peek() != Some(&Tok::Cup) {
            return Ok(first);
        }
        let mut parts = vec![first];
        while self.eat(&Tok::Cup) {
            parts.push(self.relation()?);
        }
        self.node(Expr::Union(parts))
    }

    fn rel_op(&self) -> Option<RelOp> {
        Some(match self.peek()? {
            Tok::Op('=') => RelOp::Eq,
            Tok::Cmd(c) if c == "in" || c == "equiv" => RelOp::Eq,
            Tok::Op('<') => RelOp::Lt,
            Tok::Op('>') => RelOp::Gt,
            Tok::Le => RelOp::Le,
            Tok::Ge => RelOp::Ge,
            Tok::Ne => RelOp::Ne,
            _ => return None,
        })
    }

    fn relation(&mut self) -> PResult {
        let first = self.additive()?;
        let Some(_) = self.rel_op() else {
            return Ok(first);
        };
        let mut sides = vec![first];
        let mut ops = vec![];
        while let Some(op) = self.rel_op() {
            self.pos += 1;
            ops.push(op);
            sides.push(self.additive()?);
        }
        self.node(Expr::Rel { sides, ops })
    }

    fn additive(&mut self) -> PResult {
        self.enter()?;
        let mut left = self.term()?;
        loop {
            let tok = self.peek().cloned();
            left = match tok {
                Some(Tok::Op('+')) => {
                    self.pos += 1;
                    let r = self.term()?;
                    self.node(Expr::Add(left.boxed(), r.boxed()))?
                }
                Some(Tok::Op('-')) => {
                    self.pos += 1;
                    let r = self.term()?;
                    self.node(Expr::Sub(left.boxed(), r.boxed()))?
                }
                Some(Tok::Pm) => {
                    self.pos += 1;
                    let r = self.term()?;
                    self.node(Expr::PlusMinus(left.boxed(), r.boxed()))?
                }
                _ => break,
            };
        }
        self.depth -= 1;
        Ok(left)
    }

    /// Whether the next token can start an implicit factor.
    fn starts_factor(&self) -> bool {
        match self.peek() {
            Some(Tok::Num(_) | Tok::Open('(') | Tok::Open('{') | Tok::Begin(_)) => true,
            Some(Tok::Word(w)) => !HEDGES.contains(&w.as_str()) && w != "percent",
            Some(Tok::Cmd(c)) => !matches!(
                c.as_str(),
                "in" | "equiv" | "rfloor" | "rceil" | "ldots" | "cdots" | "dots" | "approx"
            ),
            _ => false,
        }
    }

    /// A word after an expression that reads as a unit (dropped).
    /// Only a trailing run of words is a unit (`5 square meters`, `5 cm, 6 cm`): prose in the
    /// middle (`dropped to -5`) is not.
    fn at_unit(&self) -> bool {
        let unit_word = |t: &Token| match &t.tok {
            Tok::Word(w) => {
                !HEDGES.contains(&w.as_str())
                    && w != "percent"
                    && !is_math_word(w)
                    && (UNITS.contains(&w.as_str()) || (w.len() >= 3 && t.space_before))
            }
            _ => false,
        };
        let run = self.toks[self.pos..]
            .iter()
            .take_while(|t| unit_word(t))
            .count();
        if run == 0 {
            return false;
        }
        matches!(
            self.toks.get(self.pos + run).map(|t| &t.tok),
            None | Some(
                Tok::Op(',' | ';' | '=' | '<' | '>' | '^' | '.' | '/')
                    | Tok::Close(_)
                    | Tok::SetClose
                    | Tok::Le
                    | Tok::Ge
                    | Tok::Ne
                    | Tok::Cup
                    | Tok::Text(_)
            )
        )
    }

    fn term(&mut self) -> PResult {
        let start = self.pos;
        let mut left = self.unary()?;
        let single_integer = |e: &Expr, tokens: usize| {
            tokens == 1 && matches!(e, Expr::Num(r) if r.is_integer() && r.num >= 0)
        };
        loop {
            match self.peek().cloned() {
                Some(Tok::Op('*')) => {
                    self.pos += 1;
                    let r = self.unary()?;
                    left = self.node(Expr::Mul(left.boxed(), r.boxed()))?;
                }
                Some(Tok::Op('/' | ':')) => {
                    self.pos += 1;
                    let r = self.unary()?;
                    left = self.node(Expr::Div(left.boxed(), r.boxed()))?;
                }
                Some(Tok::Text(t)) if matches!(t.trim(), "or" | "and") => break,
                Some(Tok::Text(t)) => {
                    let words = t.trim();
                    if HEDGES
                        .iter()
                        .any(|h| words.split_whitespace().any(|w| w.eq_ignore_ascii_case(h)))
                    {
                        return Err(ParseError::Hedge(format!("`{words}` between answers")));
                    }
                    if words.chars().any(|c| c.is_ascii_digit()) {
                        return Err(invalid(format!("text `{words}` inside the answer")));
                    }
                    self.pos += 1; // a unit in words
                    self.skip_unit_power();
                }
                Some(Tok::Word(w))
                    if w.len() == 1
                        && SHORT_UNITS.contains(&w.as_str())
                        && self.space_before()
                        && self.pos + 1 == self.toks.len()
                        && {
                            let mut v = vec![];
                            left.vars(&mut v);
                            v.is_empty()
                        } =>
                {
                    // `1200 m`: a one-letter unit after a constant, at the very end.
                    self.pos += 1;
                }
                _ if self.at_unit() => {
                    while self.at_unit() {
                        self.pos += 1;
                    }
                    self.skip_unit_power();
                }
                _ if self.starts_factor() => {
                    if let Some(Tok::Num(_)) = self.peek() {
                        // Only a mixed number may follow a number-ended factor.
                        if single_integer(&left, self.pos - start)
                            && let Some(mixed) = self.mixed_fraction(&left)?
                        {
                            left = mixed;
                            continue;
                        }
                        return Err(invalid("two numbers side by side"));
                    }
                    if single_integer(&left, self.pos - start)
                        && self.peek() == Some(&Tok::Cmd("frac".into()))
                        && let Some(mixed) = self.mixed_fraction(&left)?
                    {
                        left = mixed;
                        continue;
                    }
                    let r = self.power()?;
                    left = self.node(Expr::Mul(left.boxed(), r.boxed()))?;
                }
                _ => break,
            }
        }
        Ok(left)
    }

    /// `^2` after a unit (`\text{cm}^2`).
    fn skip_unit_power(&mut self) {
        if self.peek() == Some(&Tok::Op('^')) && matches!(self.peek_at(1), Some(Tok::Num(_))) {
            self.pos += 2;
        }
    }

    /// After an integer: `\frac{p}{q}` or `p/q` with integer literals, as `int + p/q`.
    fn mixed_fraction(&mut self, whole: &Expr) -> Result<Option<Expr>, ParseError> {
        let int_lit = |t: Option<&Tok>| match t {
            Some(Tok::Num(NumLit { exact: Some(r), .. })) if r.is_integer() => Some(*r),
            _ => None,
        };
        let save = self.pos;
        let parts = if self.peek() == Some(&Tok::Cmd("frac".into())) {
            self.pos += 1;
            let p = self.arg()?;
            let q = self.arg()?;
            match (p, q) {
                (Expr::Num(p), Expr::Num(q)) if p.is_integer() && q.is_integer() => Some((p, q)),
                _ => None,
            }
        } else if let (Some(p), Some(Tok::Op('/')), Some(q)) = (
            int_lit(self.peek()),
            self.peek_at(1),
            int_lit(self.peek_at(2)),
        ) {
            self.pos += 3;
            Some((p, q))
        } else {
            None
        };
        match parts {
            Some((p, q)) if p.num < q.num && q.num > 0 => {
                let frac = Expr::Div(Expr::Num(p).boxed(), Expr::Num(q).boxed());
                Ok(Some(
                    self.node(Expr::Add(whole.clone().boxed(), frac.boxed()))?,
                ))
            }
            _ => {
                self.pos = save;
                Ok(None)
            }
        }
    }

    fn unary(&mut self) -> PResult {
        match self.peek() {
            Some(Tok::Op('-')) => {
                self.pos += 1;
                self.enter()?;
                let e = self.unary()?;
                self.depth -= 1;
                self.node(Expr::Neg(e.boxed()))
            }
            Some(Tok::Op('+')) => {
                self.pos += 1;
                self.unary()
            }
            Some(Tok::Pm) => {
                // `\pm 1`: the set {1, -1}.
                self.pos += 1;
                let e = self.unary()?;
                self.node(Expr::PlusMinus(
                    Expr::Num(super::expr::Rational::int(0)).boxed(),
                    e.boxed(),
                ))
            }
            _ => self.power(),
        }
    }

    fn power(&mut self) -> PResult {
        let base = self.postfix()?;
        if !self.eat(&Tok::Op('^')) {
            return Ok(base);
        }
        self.enter()?;
        let exp = match self.peek() {
            Some(Tok::Op('-')) => {
                self.pos += 1;
                let e = self.power()?;
                self.node(Expr::Neg(e.boxed()))?
            }
            _ => self.power()?,
        };
        self.depth -= 1;
        let p = self.node(Expr::Pow(base.boxed(), exp.boxed()))?;
        self.postfix_ops(p)
    }

    fn postfix(&mut self) -> PResult {
        let a = self.atom()?;
        self.postfix_ops(a)
    }

    fn postfix_ops(&mut self, mut a: Expr) -> PResult {
        loop {
            match self.peek() {
                Some(Tok::Op('!')) => {
                    self.pos += 1;
                    a = self.node(Expr::Factorial(a.boxed()))?;
                }
                Some(Tok::Percent) => {
                    self.pos += 1;
                    a = self.node(Expr::Percent(a.boxed()))?;
                }
                Some(Tok::Word(w)) if w == "percent" => {
                    self.pos += 1;
                    a = self.node(Expr::Percent(a.boxed()))?;
                }
                _ => return Ok(a),
            }
        }
    }

    /// A `{…}` group or a single token, as a command argument.
    fn arg(&mut self) -> PResult {
        if self.eat(&Tok::Open('{')) {
            let e = self.list()?;
            self.expect(&Tok::Close('}'))?;
            return Ok(e);
        }
        self.atom() // one atom: `\frac 1 2`, `\sqrt2`
    }

    /// A subscript after a variable name: `_1`, `_{10}`, `_n`.
    fn subscript(&mut self, name: &mut String) -> Result<(), ParseError> {
        if !self.eat(&Tok::Op('_')) {
            return Ok(());
        }
        let sub = match self.next() {
            Some(Tok::Num(n)) => format!("{}", n.value),
            Some(Tok::Word(w)) => w,
            Some(Tok::Open('{')) => {
                let mut s = String::new();
                loop {
                    match self.next() {
                        Some(Tok::Close('}')) => break,
                        Some(Tok::Num(n)) => s.push_str(&format!("{}", n.value)),
                        Some(Tok::Word(w)) => s.push_str(&w),
                        Some(Tok::Op(c)) => s.push(c),
                        Some(Tok::Cmd(c)) => s.push_str(&c),
                        _ => return Err(invalid("a malformed subscript")),
                    }
                }
                s
            }
            _ => return Err(invalid("a malformed subscript")),
        };
        name.push('_');
        name.push_str(&sub);
        Ok(())
    }

    fn atom(&mut self) -> PResult {
        self.enter()?;
        let e = self.atom_inner();
        self.depth -= 1;
        e
    }

    fn atom_inner(&mut self) -> PResult {
        let Some(tok) = self.next() else {
            return Err(invalid("the answer ends too early"));
        };
        match tok {
            Tok::Num(n) => self.node(match n.exact {
                Some(r) => Expr::Num(r),
                None => Expr::Float(n.value),
            }),
            Tok::Open(c @ ('(' | '[')) => self.bracket(c),
            Tok::Open('{') => {
                if self.eat(&Tok::Close('}')) {
                    return Err(invalid("an empty group"));
                }
                let e = self.list()?;
                self.expect(&Tok::Close('}'))?;
                Ok(match e {
                    Expr::List(items) => Expr::Set(items),
                    e => e,
                })
            }
            Tok::SetOpen => {
                if self.eat(&Tok::SetClose) {
                    return self.node(Expr::Set(vec![]));
                }
                let e = self.list()?;
                self.expect(&Tok::SetClose)?;
                self.node(Expr::Set(match e {
                    Expr::List(items) => items,
                    e => vec![e],
                }))
            }
            Tok::Op('|') => {
                let e = self.additive()?;
                self.expect(&Tok::Op('|'))?;
                self.node(Expr::Func(Func::Abs, e.boxed()))
            }
            Tok::Word(w) => self.word(w),
            Tok::Cmd(c) => self.command(c),
            Tok::Begin(env) => self.matrix(env),
            Tok::Text(t) => {
                // `\text{5}`: the text is the answer itself.
                let inner = parse_inner(&t, self.limits)?;
                self.node(inner)
            }
            other => Err(invalid(format!("unexpected {other:?}"))),
        }
    }

    fn bracket(&mut self, open: char) -> PResult {
        let mut items = vec![self.union()?];
        while matches!(self.peek(), Some(Tok::Op(',' | ';'))) {
            self.pos += 1;
            items.push(self.union()?);
        }
        let close = match self.next() {
            Some(Tok::Close(c @ (')' | ']'))) => c,
            other => return Err(invalid(format!("`{open}` closed by {other:?}"))),
        };
        let interval = |lo_closed, hi_closed, mut items: Vec<Expr>| {
            let hi = items.pop().expect("two items");
            let lo = items.pop().expect("two items");
            Expr::Interval {
                lo: lo.boxed(),
                hi: hi.boxed(),
                lo_closed,
                hi_closed,
            }
        };
        let e = match (items.len(), open, close) {
            (1, '(', ')') | (1, '[', ']') => items.pop().expect("one item"),
            (2, '(', ')') => Expr::Tuple(items),
            (2, '[', ']') => interval(true, true, items),
            (2, '(', ']') => interval(false, true, items),
            (2, '[', ')') => interval(true, false, items),
            (_, '(', ')') | (_, '[', ']') if items.len() > 2 => Expr::Tuple(items),
            _ => {
                return Err(invalid(format!(
                    "`{open}…{close}` around {} items",
                    items.len()
                )));
            }
        };
        self.node(e)
    }

    fn word(&mut self, w: String) -> PResult {
        if HEDGES.contains(&w.as_str()) {
            return Err(ParseError::Hedge(format!("`{w}` between answers")));
        }
        if let Some(f) = is_function_word(&w) {
            return self.function(f);
        }
        match w.as_str() {
            "pi" => return self.node(Expr::Pi),
            "e" => return self.node(Expr::E),
            "inf" | "infty" | "infinity" | "oo" => return self.node(Expr::Inf),
            _ => {}
        }
        if w.len() == 1 {
            let mut name = w;
            self.subscript(&mut name)?;
            return self.node(Expr::Var(name));
        }
        if w.len() <= 4 && !ENGLISH.contains(&w.to_ascii_lowercase().as_str()) {
            // `xy`, `abc`: a product of single-letter variables.
            let mut letters = w.chars().map(|c| Expr::Var(c.to_string()));
            let first = letters.next().expect("non-empty word");
            let mut e = first;
            for l in letters {
                e = self.node(Expr::Mul(e.boxed(), l.boxed()))?;
            }
            return Ok(e);
        }
        Err(invalid(format!("the word `{w}` inside a math answer")))
    }

    fn function(&mut self, f: Func) -> PResult {
        // `\sin^2 x` is `(\sin x)^2`; `\sin^{-1} x` is `\arcsin x`.
        let mut power = None;
        let mut f = f;
        if self.eat(&Tok::Op('^')) {
            let p = if self.eat(&Tok::Open('{')) {
                let e = self.additive()?;
                self.expect(&Tok::Close('}'))?;
                e
            } else if self.eat(&Tok::Op('-')) {
                let e = self.atom()?;
                Expr::Neg(e.boxed())
            } else {
                self.atom()?
            };
            let minus_one =
                matches!(&p, Expr::Neg(a) if **a == Expr::Num(super::expr::Rational::int(1)));
            match (minus_one, f) {
                (true, Func::Sin) => f = Func::Asin,
                (true, Func::Cos) => f = Func::Acos,
                (true, Func::Tan) => f = Func::Atan,
                _ => power = Some(p),
            }
        }
        let arg = self.function_argument()?;
        let mut e = self.node(Expr::Func(f, arg.boxed()))?;
        if let Some(p) = power {
            e = self.node(Expr::Pow(e.boxed(), p.boxed()))?;
        }
        Ok(e)
    }

    /// `(x)`, `{x}`, or an unbracketed factor with the letters glued to it (`\sin 2x`).
    fn function_argument(&mut self) -> PResult {
        if matches!(self.peek(), Some(Tok::Open('(' | '{'))) {
            return self.power();
        }
        let mut arg = self.power()?;
        while !self.space_before()
            && matches!(self.peek(), Some(Tok::Word(w)) if w.len() == 1 && !HEDGES.contains(&w.as_str()))
        {
            let r = self.power()?;
            arg = self.node(Expr::Mul(arg.boxed(), r.boxed()))?;
        }
        Ok(arg)
    }

    fn command(&mut self, c: String) -> PResult {
        let cmd = c.as_str();
        if let Some(f) = is_function_word(cmd).filter(|_| cmd != "sqrt") {
            if cmd == "log" && self.eat(&Tok::Op('_')) {
                let base = self.arg()?;
                let arg = self.function_argument()?;
                return self.node(Expr::Log(base.boxed(), arg.boxed()));
            }
            return self.function(f);
        }
        if GREEK.contains(&cmd) {
            let mut name = c.clone();
            self.subscript(&mut name)?;
            return self.node(Expr::Var(name));
        }
        match cmd {
            "frac" => {
                // `\frac34` lexes as one number 34.
                if let Some(Tok::Num(NumLit {
                    exact: Some(r),
                    frac_digits: 0,
                    ..
                })) = self.peek()
                    && r.is_integer()
                    && (10..100).contains(&r.num)
                    && !self.space_before()
                {
                    let (n, d) = (r.num / 10, r.num % 10);
                    self.pos += 1;
                    return self.node(Expr::Div(
                        Expr::Num(super::expr::Rational::int(n)).boxed(),
                        Expr::Num(super::expr::Rational::int(d)).boxed(),
                    ));
                }
                let n = self.arg()?;
                let d = self.arg()?;
                self.node(Expr::Div(n.boxed(), d.boxed()))
            }
            "binom" => {
                let n = self.arg()?;
                let k = self.arg()?;
                self.node(Expr::Binom(n.boxed(), k.boxed()))
            }
            "sqrt" => {
                if self.eat(&Tok::Open('[')) {
                    let index = self.additive()?;
                    self.expect(&Tok::Close(']'))?;
                    let x = self.arg()?;
                    return self.node(Expr::Root(index.boxed(), x.boxed()));
                }
                let x = self.arg()?;
                self.node(Expr::Func(Func::Sqrt, x.boxed()))
            }
            "pi" => self.node(Expr::Pi),
            "infty" | "infin" => self.node(Expr::Inf),
            "emptyset" | "varnothing" | "empty" => self.node(Expr::Set(vec![])),
            "mathbb" => match self.arg()? {
                // `\mathbb{R}`: all reals.
                Expr::Var(v) if v == "R" => self.node(Expr::Interval {
                    lo: Expr::Neg(Expr::Inf.boxed()).boxed(),
                    hi: Expr::Inf.boxed(),
                    lo_closed: false,
                    hi_closed: false,
                }),
                _ => Err(invalid("a number set other than `\\mathbb{R}`")),
            },
            "boxed" | "fbox" => self.arg(),
            "lfloor" | "lceil" => {
                let e = self.additive()?;
                let close = if cmd == "lfloor" { "rfloor" } else { "rceil" };
                self.expect(&Tok::Cmd(close.into()))?;
                let f = if cmd == "lfloor" {
                    Func::Floor
                } else {
                    Func::Ceil
                };
                self.node(Expr::Func(f, e.boxed()))
            }
            "ldots" | "cdots" | "dots" | "vdots" => Err(invalid("an ellipsis `…`")),
            _ => Err(invalid(format!("unsupported command `\\{cmd}`"))),
        }
    }

    fn matrix(&mut self, env: String) -> PResult {
        if !matches!(
            env.as_str(),
            "pmatrix" | "bmatrix" | "Bmatrix" | "matrix" | "smallmatrix" | "array"
        ) {
            return Err(invalid(format!("unsupported environment `{env}`")));
        }
        let mut rows: Vec<Vec<Expr>> = vec![vec![]];
        loop {
            if self.eat(&Tok::End(env.clone())) {
                break;
            }
            let cell = self.additive()?;
            rows.last_mut().expect("a row").push(cell);
            match self.next() {
                Some(Tok::Op('&')) => {}
                Some(Tok::RowSep) => {
                    if self.peek() == Some(&Tok::End(env.clone())) {
                        continue;
                    }
                    rows.push(vec![]);
                }
                Some(Tok::End(e)) if e == env => break,
                other => return Err(invalid(format!("unexpected {other:?} in a matrix"))),
            }
        }
        let width = rows[0].len();
        if width == 0 || rows.iter().any(|r| r.len() != width) {
            return Err(invalid("a matrix with rows of different lengths"));
        }
        self.node(Expr::Matrix(rows))
    }
}

/// Parses already-prepared inner text (from `\text{…}`).
fn parse_inner(text: &str, limits: Limits) -> PResult {
    parse_tokens(lex(text).map_err(|e| invalid(e.0))?, limits)
}

fn parse_tokens(mut toks: Vec<Token>, limits: Limits) -> PResult {
    while matches!(toks.last().map(|t| &t.tok), Some(Tok::Op('.' | ',' | ';'))) {
        toks.pop();
    }
    if toks.is_empty() {
        return Err(invalid("an empty answer"));
    }
    let mut p = Parser {
        toks,
        pos: 0,
        nodes: 0,
        depth: 0,
        limits,
    };
    let e = p.list()?;
    if p.pos < p.toks.len() {
        return Err(invalid(format!("unexpected {:?}", p.toks[p.pos].tok)));
    }
    Ok(e)
}

/// Text normalised for comparison: lowercase; `\text{}`-style wrappers, `$`, braces and
/// sentence punctuation (`. , ; : ! ?` and quotes) removed; articles (`a`, `an`, `the`) dropped;
/// whitespace collapsed. Math symbols stay (`2/3` is not `2*3`).
pub fn normalize_text(s: &str) -> String {
    let mut t = s.to_string();
    for w in [
        "\\text", "\\textbf", "\\textit", "\\mathrm", "\\mbox", "\\textrm", "\\emph",
    ] {
        t = t.replace(w, " ");
    }
    let t: String = t
        .chars()
        .filter(|c| !matches!(c, '{' | '}' | '$'))
        .map(|c| {
            if matches!(c, '.' | ',' | ';' | ':' | '!' | '?' | '"' | '\'' | '`')
                || c.is_whitespace()
            {
                ' '
            } else {
                c.to_lowercase().next().unwrap_or(c)
            }
        })
        .collect();
    t.split_whitespace()
        .filter(|w| !matches!(*w, "a" | "an" | "the"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Short English words: prose, never a product of variables (`it is` is not `i·t·i·s`), so a
/// sentence fails to parse as math and its trailing math is read instead.
const ENGLISH: &[&str] = &[
    "a", "i", "the", "and", "is", "it", "so", "we", "get", "in", "end", "then", "thus", "that",
    "this", "with", "from", "for", "are", "was", "be", "by", "to", "of", "on", "at", "as", "an",
    "or", "if", "its", "has", "have", "had", "can", "may", "will", "our", "you", "me", "my", "he",
    "she", "his", "her", "they", "them", "all", "any", "one", "two", "four", "five", "nine", "ten",
    "yes", "not", "no", "but", "also", "here", "when", "what", "why", "how", "find", "gives",
    "give", "got", "let", "set", "use", "see", "done", "now", "only", "each", "both", "more",
    "less", "than", "into", "over", "just", "must", "some", "such", "very", "much", "way", "step",
    "work", "case", "true", "does", "did", "do", "go", "up", "out", "off", "too", "put", "say",
    "said", "per", "via", "hope", "thus", "sum", "total", "get", "gets", "makes", "make", "took",
    "take", "left", "area", "side", "ways", "days", "year", "time", "note",
];

/// Two-letter English words; other two-letter runs (`xy`) are products of variables.
const SHORT_WORDS: &[&str] = &[
    "no", "ok", "up", "on", "of", "in", "is", "it", "to", "we", "he", "me", "my", "so", "do", "go",
    "at", "by", "if", "as", "be", "or", "an",
];

/// Whether an answer is words rather than math: only words, text and punctuation, with at
/// least one prose word (three or more letters, or a two-letter English word).
fn is_text_answer(toks: &[Token]) -> bool {
    let mut prose = false;
    for t in toks {
        match &t.tok {
            Tok::Word(w) => {
                if (w.len() >= 3 || SHORT_WORDS.contains(&w.as_str())) && !is_math_word(w) {
                    prose = true;
                }
            }
            Tok::Text(s) => {
                if s.chars().any(|c| c.is_ascii_digit()) {
                    return false;
                }
                if s.split(|c: char| !c.is_alphabetic())
                    .any(|w| w.chars().count() >= 2)
                {
                    prose = true;
                }
            }
            Tok::Op(',' | '.' | '\'' | '-' | '!' | ';' | ':') => {}
            _ => return false,
        }
    }
    prose
}

/// Parses one answer (LaTeX or plain text) into an [`Expr`]; words become [`Expr::Text`].
pub fn parse_answer(s: &str, limits: Limits) -> PResult {
    let toks = lex(&prepare(s)).map_err(|e| invalid(e.0))?;
    if is_text_answer(&toks) {
        let words = normalize_text(s);
        if words.split_whitespace().any(|w| HEDGES.contains(&w))
            && words.split_whitespace().count() <= 3
        {
            return Err(ParseError::Hedge(format!("`{words}`")));
        }
        return Ok(Expr::Text(words));
    }
    if let Some(w) = toks.iter().find_map(|t| match &t.tok {
        Tok::Word(w) if is_hedge_word(w) && w != "or" && w != "and" => Some(w),
        _ => None,
    }) {
        return Err(ParseError::Hedge(format!("`{w}` between answers")));
    }
    parse_tokens(toks, limits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin::math::expr::Rational;

    fn p(s: &str) -> Expr {
        parse_answer(s, Limits::default()).unwrap_or_else(|e| panic!("`{s}`: {e:?}"))
    }

    fn num(n: i128) -> Expr {
        Expr::Num(Rational::int(n))
    }

    #[test]
    fn brackets_pick_the_structure() {
        assert_eq!(p("(3)"), num(3));
        assert_eq!(p("(1, 2)"), Expr::Tuple(vec![num(1), num(2)]));
        assert!(matches!(
            p("[1, 2)"),
            Expr::Interval {
                lo_closed: true,
                hi_closed: false,
                ..
            }
        ));
        assert!(matches!(
            p("\\left( 0, 1 \\right]"),
            Expr::Interval {
                lo_closed: false,
                hi_closed: true,
                ..
            }
        ));
        assert_eq!(p("[1, 2, 3]"), Expr::Tuple(vec![num(1), num(2), num(3)]));
        assert_eq!(p("\\{1, 2\\}"), Expr::Set(vec![num(1), num(2)]));
        assert_eq!(p("1, 2"), Expr::List(vec![num(1), num(2)]));
        assert!(matches!(p("(-\\infty, 0) \\cup (1, \\infty)"), Expr::Union(v) if v.len() == 2));
    }

    #[test]
    fn numbers_side_by_side_and_hedges_are_errors() {
        let p = |s: &str| parse_answer(s, Limits::default()).unwrap();
        let err = |s: &str| parse_answer(s, Limits::default()).unwrap_err();
        assert!(matches!(err("3 4"), ParseError::Invalid(_)));
        assert!(matches!(err("3 or maybe 4"), ParseError::Hedge(_)));
        assert!(matches!(
            err("3 \\text{ or perhaps } 4"),
            ParseError::Hedge(_)
        ));
        assert!(matches!(p("3 or 4"), Expr::Set(v) if v.len() == 2));
        assert!(matches!(p("3 \\text{ or } 4"), Expr::Set(v) if v.len() == 2));
        assert!(matches!(err("1 2 3 4 5"), ParseError::Invalid(_)));
    }

    #[test]
    fn mixed_numbers_and_units() {
        let half = Expr::Div(num(1).boxed(), num(2).boxed());
        assert_eq!(
            p("2\\frac{1}{2}"),
            Expr::Add(num(2).boxed(), half.clone().boxed())
        );
        assert_eq!(p("2 1/2"), Expr::Add(num(2).boxed(), half.boxed()));
        assert_eq!(p("5 \\text{ cm}"), num(5));
        assert_eq!(p("5 cm"), num(5));
        assert_eq!(p("12 apples"), num(12));
        assert_eq!(p("\\text{Monday}"), Expr::Text("monday".into()));
    }

    #[test]
    fn size_limits_are_errors_not_hangs() {
        let deep = format!("{}1{}", "(".repeat(500), ")".repeat(500));
        assert!(matches!(
            parse_answer(&deep, Limits::default()),
            Err(ParseError::TooLarge(_))
        ));
        let long = vec!["1"; 5000].join("+");
        assert!(matches!(
            parse_answer(&long, Limits::default()),
            Err(ParseError::TooLarge(_))
        ));
    }
}

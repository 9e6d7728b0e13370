//! The expression tree a math answer parses into, and the exact rationals its literals carry.
//!
//! One tree holds every answer form: arithmetic (numbers, constants, variables, operators,
//! functions) and the structures around it (tuples, sets, intervals, unions, matrices,
//! relations, text). Arithmetic on a structure has no value (evaluation gives NaN), so a
//! malformed mix can never compare equal to a number.

/// An exact rational with `i128` parts, normalised: `den > 0`, `gcd(num, den) = 1`. Every
/// operation is checked and returns `None` on overflow, so callers fall back to `f64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rational {
    /// Numerator.
    pub num: i128,
    /// Denominator, `> 0`.
    pub den: i128,
}

fn gcd(mut a: i128, mut b: i128) -> i128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.abs()
}

impl Rational {
    /// `num / den`, normalised; `None` when `den` is 0.
    pub fn new(num: i128, den: i128) -> Option<Self> {
        if den == 0 {
            return None;
        }
        let g = gcd(num, den).max(1);
        let (mut num, mut den) = (num / g, den / g);
        if den < 0 {
            num = num.checked_neg()?;
            den = den.checked_neg()?;
        }
        Some(Self { num, den })
    }

    /// The integer `n`.
    pub fn int(n: i128) -> Self {
        Self { num: n, den: 1 }
    }

    /// `self + other`.
    pub fn checked_add(self, o: Self) -> Option<Self> {
        let num = self
            .num
            .checked_mul(o.den)?
            .checked_add(o.num.checked_mul(self.den)?)?;
        Self::new(num, self.den.checked_mul(o.den)?)
    }

    /// `self - other`.
    pub fn checked_sub(self, o: Self) -> Option<Self> {
        self.checked_add(o.checked_neg()?)
    }

    /// `-self`.
    pub fn checked_neg(self) -> Option<Self> {
        Some(Self {
            num: self.num.checked_neg()?,
            den: self.den,
        })
    }

    /// `self * other`.
    pub fn checked_mul(self, o: Self) -> Option<Self> {
        Self::new(self.num.checked_mul(o.num)?, self.den.checked_mul(o.den)?)
    }

    /// `self / other`; `None` when `other` is 0.
    pub fn checked_div(self, o: Self) -> Option<Self> {
        Self::new(self.num.checked_mul(o.den)?, self.den.checked_mul(o.num)?)
    }

    /// `self ^ exp` for an integer exponent of at most 256 in size.
    pub fn checked_pow(self, exp: i128) -> Option<Self> {
        if exp.unsigned_abs() > 256 {
            return None;
        }
        let mut acc = Self::int(1);
        for _ in 0..exp.unsigned_abs() {
            acc = acc.checked_mul(self)?;
        }
        if exp < 0 {
            Self::int(1).checked_div(acc)
        } else {
            Some(acc)
        }
    }

    /// Whether this is an integer.
    pub fn is_integer(self) -> bool {
        self.den == 1
    }

    /// The nearest `f64`.
    pub fn to_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }
}

/// A function of one argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// Trigonometric and hyperbolic functions and their inverses.
    Sin,
    /// Cosine.
    Cos,
    /// Tangent.
    Tan,
    /// Cotangent.
    Cot,
    /// Secant.
    Sec,
    /// Cosecant.
    Csc,
    /// Inverse sine.
    Asin,
    /// Inverse cosine.
    Acos,
    /// Inverse tangent.
    Atan,
    /// Hyperbolic sine.
    Sinh,
    /// Hyperbolic cosine.
    Cosh,
    /// Hyperbolic tangent.
    Tanh,
    /// Natural logarithm (`\ln`, and `\log` without a base, as in sympy and Math-Verify).
    Ln,
    /// `e^x`.
    Exp,
    /// Square root.
    Sqrt,
    /// Absolute value (`|x|`, `\lvert x\rvert`, `abs`).
    Abs,
    /// Floor.
    Floor,
    /// Ceiling.
    Ceil,
}

/// A relation symbol between two sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelOp {
    /// `=`.
    Eq,
    /// `<`.
    Lt,
    /// `\le`, `<=`, `≤`.
    Le,
    /// `>`.
    Gt,
    /// `\ge`, `>=`, `≥`.
    Ge,
    /// `\ne`, `!=`, `≠`.
    Ne,
}

/// A parsed answer (or part of one).
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// An exact number (every literal that fits an `i128` rational).
    Num(Rational),
    /// A literal too large for an exact rational.
    Float(f64),
    /// `\pi`.
    Pi,
    /// Euler's number `e`.
    E,
    /// `\infty`.
    Inf,
    /// A free variable (`x`, `x_1`, `\alpha`).
    Var(String),
    /// `-a`.
    Neg(Box<Expr>),
    /// `a + b`.
    Add(Box<Expr>, Box<Expr>),
    /// `a - b`.
    Sub(Box<Expr>, Box<Expr>),
    /// `a · b`.
    Mul(Box<Expr>, Box<Expr>),
    /// `a / b`.
    Div(Box<Expr>, Box<Expr>),
    /// `a ^ b`.
    Pow(Box<Expr>, Box<Expr>),
    /// `f(a)`.
    Func(Func, Box<Expr>),
    /// `\log_{base} a`.
    Log(Box<Expr>, Box<Expr>),
    /// `\sqrt[index]{a}`.
    Root(Box<Expr>, Box<Expr>),
    /// `a!`.
    Factorial(Box<Expr>),
    /// `\binom{n}{k}`.
    Binom(Box<Expr>, Box<Expr>),
    /// `a%` (worth `a / 100`; at the top of an answer it may also read as `a`).
    Percent(Box<Expr>),
    /// `a \pm b`: the set `{a + b, a - b}` at the top of an answer.
    PlusMinus(Box<Expr>, Box<Expr>),
    /// `(a, b, …)` or `[a, b, c, …]`: ordered.
    Tuple(Vec<Expr>),
    /// A bare comma list `a, b, …` (no brackets): compared as a set, or element-wise with a tuple.
    List(Vec<Expr>),
    /// `\{a, b, …\}`: unordered.
    Set(Vec<Expr>),
    /// An interval with its ends.
    Interval {
        /// Lower end.
        lo: Box<Expr>,
        /// Upper end.
        hi: Box<Expr>,
        /// Whether the lower end is included.
        lo_closed: bool,
        /// Whether the upper end is included.
        hi_closed: bool,
    },
    /// `A \cup B \cup …`: unordered.
    Union(Vec<Expr>),
    /// A matrix, row by row (a column vector is `n × 1`).
    Matrix(Vec<Vec<Expr>>),
    /// A chain `a op b op c …`: `sides.len() == ops.len() + 1`.
    Rel {
        /// The sides, left to right.
        sides: Vec<Expr>,
        /// The relation symbols between them.
        ops: Vec<RelOp>,
    },
    /// A text answer, normalised (see [`normalize_text`](super::parse::normalize_text)).
    Text(String),
}

impl Expr {
    /// Boxes `self`.
    pub fn boxed(self) -> Box<Self> {
        Box::new(self)
    }

    /// Whether this is plain arithmetic (no structure, relation or text anywhere).
    pub fn is_scalar(&self) -> bool {
        use Expr::*;
        match self {
            Num(_) | Float(_) | Pi | E | Inf | Var(_) => true,
            Neg(a) | Func(_, a) | Factorial(a) | Percent(a) => a.is_scalar(),
            Add(a, b)
            | Sub(a, b)
            | Mul(a, b)
            | Div(a, b)
            | Pow(a, b)
            | Log(a, b)
            | Root(a, b)
            | Binom(a, b)
            | PlusMinus(a, b) => a.is_scalar() && b.is_scalar(),
            Tuple(_)
            | List(_)
            | Set(_)
            | Interval { .. }
            | Union(_)
            | Matrix(_)
            | Rel { .. }
            | Text(_) => false,
        }
    }

    /// The free variables, sorted and deduplicated, into `out`.
    pub fn vars(&self, out: &mut Vec<String>) {
        use Expr::*;
        match self {
            Var(v) => {
                if !out.contains(v) {
                    out.push(v.clone());
                    out.sort();
                }
            }
            Num(_) | Float(_) | Pi | E | Inf | Text(_) => {}
            Neg(a) | Func(_, a) | Factorial(a) | Percent(a) => a.vars(out),
            Add(a, b)
            | Sub(a, b)
            | Mul(a, b)
            | Div(a, b)
            | Pow(a, b)
            | Log(a, b)
            | Root(a, b)
            | Binom(a, b)
            | PlusMinus(a, b) => {
                a.vars(out);
                b.vars(out);
            }
            Interval { lo, hi, .. } => {
                lo.vars(out);
                hi.vars(out);
            }
            Tuple(v) | List(v) | Set(v) | Union(v) => v.iter().for_each(|e| e.vars(out)),
            Rel { sides, .. } => sides.iter().for_each(|e| e.vars(out)),
            Matrix(rows) => rows.iter().flatten().for_each(|e| e.vars(out)),
        }
    }

    /// The form this answer has, for the `forms` option.
    pub fn form(&self) -> super::config::Form {
        use super::config::Form;
        match self {
            Expr::Num(_) | Expr::Float(_) | Expr::Percent(_) => Form::Number,
            Expr::Neg(a) if matches!(**a, Expr::Num(_) | Expr::Float(_)) => Form::Number,
            Expr::Tuple(_) | Expr::List(_) => Form::Tuple,
            Expr::Set(_) | Expr::PlusMinus(..) => Form::Set,
            Expr::Interval { .. } | Expr::Union(_) => Form::Interval,
            Expr::Matrix(_) => Form::Matrix,
            Expr::Rel { .. } => Form::Relation,
            Expr::Text(_) => Form::Text,
            _ => Form::Expression,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rationals_normalise_and_check_overflow() {
        assert_eq!(Rational::new(2, -4), Some(Rational { num: -1, den: 2 }));
        assert_eq!(Rational::new(1, 0), None);
        let third = Rational::new(1, 3).unwrap();
        assert_eq!(
            third.checked_add(third).unwrap().checked_add(third),
            Some(Rational::int(1))
        );
        assert_eq!(Rational::int(2).checked_pow(-3), Rational::new(1, 8));
        assert_eq!(Rational::int(10).checked_pow(40), None);
        assert_eq!(Rational::int(i128::MAX).checked_add(Rational::int(1)), None);
    }

    #[test]
    fn vars_are_sorted_and_unique() {
        let e = Expr::Add(
            Expr::Var("y".into()).boxed(),
            Expr::Mul(Expr::Var("x".into()).boxed(), Expr::Var("y".into()).boxed()).boxed(),
        );
        let mut v = vec![];
        e.vars(&mut v);
        assert_eq!(v, ["x", "y"]);
    }
}

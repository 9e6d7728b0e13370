//! Whether an answer equals the reference.
//!
//! - **Numbers**: equal when their exact rationals are equal; two different integers never
//!   (with `exact_integers`, the default); else within
//!   `abs_tol + rel_tol · |reference|`; optionally when the answer rounds to a decimal
//!   reference at the reference's number of digits. A top-level percentage reads as `p / 100`,
//!   and also as `p` with `percent = "either"`. `\infty` equals only an infinity of its sign.
//! - **Expressions with variables**: evaluated at 12 fixed pseudo-random points (positive and
//!   negative values for every free variable of either side) — the standard identity test
//!   without a computer algebra system. Equal when every point where both are real agrees within
//!   tolerance and at least 4 points are usable (points outside either side's real domain are
//!   skipped: `\ln(xy)` equals `\ln x + \ln y`; `\sqrt{x^2}` is still not `x`, which differs at
//!   negative points).
//! - **Tuples and matrices** element-wise, in order; a 2-tuple `(a, b)` also equals the open
//!   interval `(a, b)`; a column or row vector equals a tuple of its entries.
//! - **Sets and bare lists** (`1, 2`) as sets: every element of each has an equal element in the
//!   other; a one-element set equals its element; a bare list also equals a tuple in order.
//! - **Intervals** end by end with the same open/closed ends; **unions** as sets of intervals;
//!   a one-variable inequality (`x > 3`, `1 < x \le 2`) is read as its interval.
//! - **Equations**: with `strict_equations = false` an equation chain stands for its last side
//!   when it is a value (`x = 3` is `3`, `2 + 1 = 3` is `3`) provided its constant sides agree
//!   (`4 = 3` is no value). Two equations are equal when they assign the same variable equal
//!   values, or else when `lhs − rhs` of one is a non-zero constant multiple of the other's
//!   (`y = 2x + 1` equals `2x − y + 1 = 0`).
//! - **Text**: normalised strings are equal; a number word `zero`…`twenty` equals its number.

use super::config::MathConfig;
use super::eval::{Budget, OutOfSteps, eval, exact};
use super::expr::{Expr, RelOp};
use crate::builtin::numeric::PercentRule;

/// Points per identity test.
const POINTS: usize = 12;
/// Usable points an identity test needs.
const MIN_POINTS: usize = 4;

/// One comparison: the options, the reference's decimal digits and the shared step budget.
pub struct Equiv<'a> {
    config: &'a MathConfig,
    /// Fractional digits of a decimal reference (`3.14` → 2), for `round_to_reference`.
    reference_digits: Option<u32>,
    budget: Budget,
}

type R = Result<bool, OutOfSteps>;

/// The value of free variable `j` at point `t`: magnitudes in [0.2, 3.2), every third point
/// negative, irrational steps so that no two variables or points coincide.
fn point_value(t: usize, j: usize) -> f64 {
    let v = (0.371 + 1.1317 * t as f64 + 0.7093 * j as f64 + 0.05 * (t * j) as f64) % 3.0 + 0.2;
    if t % 3 == 2 { -v } else { v }
}

/// `x = 3`-like: a chain of `=` only.
fn is_equation(e: &Expr) -> bool {
    matches!(e, Expr::Rel { ops, .. } if ops.iter().all(|o| *o == RelOp::Eq))
}

impl<'a> Equiv<'a> {
    /// A comparison under `config` with `steps` evaluation steps.
    pub fn new(config: &'a MathConfig, reference_digits: Option<u32>, steps: u64) -> Self {
        Self {
            config,
            reference_digits,
            budget: Budget { left: steps },
        }
    }

    /// Whether `answer` equals `reference`; `Err` when the step budget runs out.
    pub fn equal(&mut self, reference: &Expr, answer: &Expr) -> R {
        let (g, p) = (canonical(reference), canonical(answer));
        self.eq_top(&g, &p)
    }

    fn eq_top(&mut self, g: &Expr, p: &Expr) -> R {
        // Percent readings apply to a top-level number only.
        if g.is_scalar() && p.is_scalar() {
            let gs = self.readings(g);
            let ps = self.readings(p);
            for a in &gs {
                for b in &ps {
                    if self.scalar(a, b)? {
                        return Ok(true);
                    }
                }
            }
            return Ok(false);
        }
        self.eq(g, p)
    }

    fn readings(&self, e: &Expr) -> Vec<Expr> {
        match (e, self.config.percent) {
            (Expr::Percent(a), PercentRule::Either) => vec![e.clone(), (**a).clone()],
            _ => vec![e.clone()],
        }
    }

    fn eq(&mut self, g: &Expr, p: &Expr) -> R {
        use Expr::*;
        let strict = self.config.strict_equations;
        if is_equation(g) && is_equation(p) {
            return self.equations(g, p);
        }
        if !strict {
            if is_equation(p) {
                return match self.equation_value(p)? {
                    Some(v) => self.eq_top(g, &v),
                    None => Ok(false),
                };
            }
            if is_equation(g) {
                return match self.equation_value(g)? {
                    Some(v) => self.eq_top(&v, p),
                    None => Ok(false),
                };
            }
        }
        match (g, p) {
            _ if g.is_scalar() && p.is_scalar() => self.scalar(g, p),
            (Tuple(a), Tuple(b)) => self.ordered(a, b),
            (Tuple(a), List(b)) | (List(a), Tuple(b)) => self.ordered(a, b),
            (
                Tuple(t),
                Interval {
                    lo,
                    hi,
                    lo_closed: false,
                    hi_closed: false,
                },
            )
            | (
                Interval {
                    lo,
                    hi,
                    lo_closed: false,
                    hi_closed: false,
                },
                Tuple(t),
            ) if t.len() == 2 => Ok(self.eq_top(&t[0], lo)? && self.eq_top(&t[1], hi)?),
            (Set(a) | List(a), Set(b) | List(b)) => self.as_sets(a, b),
            (Set(a), x) | (x, Set(a)) if a.len() == 1 && x.is_scalar() => self.eq_top(&a[0], x),
            (
                Interval {
                    lo: l1,
                    hi: h1,
                    lo_closed: c1,
                    hi_closed: d1,
                },
                Interval {
                    lo: l2,
                    hi: h2,
                    lo_closed: c2,
                    hi_closed: d2,
                },
            ) => Ok(c1 == c2 && d1 == d2 && self.eq_top(l1, l2)? && self.eq_top(h1, h2)?),
            (Union(a), Union(b)) => self.as_sets(a, b),
            (Matrix(a), Matrix(b)) => {
                if a.len() != b.len() || a[0].len() != b[0].len() {
                    return Ok(false);
                }
                let (fa, fb): (Vec<_>, Vec<_>) = (a.concat(), b.concat());
                self.ordered(&fa, &fb)
            }
            (Matrix(m), Tuple(t)) | (Tuple(t), Matrix(m)) if m.len() == 1 || m[0].len() == 1 => {
                self.ordered(&m.concat(), t)
            }
            (Rel { sides: s1, ops: o1 }, Rel { sides: s2, ops: o2 }) => {
                self.relations(s1, o1, s2, o2)
            }
            (Text(a), Text(b)) => Ok(a == b),
            (Text(w), x) | (x, Text(w)) if x.is_scalar() => match number_word(w) {
                Some(n) => self.eq_top(&Num(super::expr::Rational::int(n)), x),
                None => Ok(false),
            },
            _ => Ok(false),
        }
    }

    fn ordered(&mut self, a: &[Expr], b: &[Expr]) -> R {
        if a.len() != b.len() {
            return Ok(false);
        }
        for (x, y) in a.iter().zip(b) {
            if !self.eq_top(x, y)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Every element of each side equals some element of the other.
    fn as_sets(&mut self, a: &[Expr], b: &[Expr]) -> R {
        for (from, to, flip) in [(a, b, false), (b, a, true)] {
            for x in from {
                let mut found = false;
                for y in to {
                    let same = if flip {
                        self.eq_top(y, x)?
                    } else {
                        self.eq_top(x, y)?
                    };
                    if same {
                        found = true;
                        break;
                    }
                }
                if !found {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// The value an equation chain stands for: its last side (or its first, when the last is a
    /// lone variable), provided every side without variables has that same value.
    fn equation_value(&mut self, e: &Expr) -> Result<Option<Expr>, OutOfSteps> {
        let Expr::Rel { sides, .. } = e else {
            return Ok(None);
        };
        let last = sides.last().expect("a relation has sides");
        let value = if matches!(last, Expr::Var(_)) {
            &sides[0]
        } else {
            last
        };
        for s in sides {
            if std::ptr::eq(s, value) || !s.is_scalar() {
                continue;
            }
            let mut vars = vec![];
            s.vars(&mut vars);
            if vars.is_empty() && value.is_scalar() && !self.scalar(s, value)? {
                return Ok(None);
            }
        }
        Ok(Some(value.clone()))
    }

    fn equations(&mut self, g: &Expr, p: &Expr) -> R {
        let (Expr::Rel { sides: a, .. }, Expr::Rel { sides: b, .. }) = (g, p) else {
            return Ok(false);
        };
        // Assignments of the same variable: compare the values.
        if let (Expr::Var(x), Expr::Var(y)) = (&a[0], &b[0]) {
            let (va, vb) = (a.last().expect("sides"), b.last().expect("sides"));
            let free_of = |e: &Expr, v: &str| {
                let mut vars = vec![];
                e.vars(&mut vars);
                !vars.iter().any(|n| n == v)
            };
            if free_of(va, x) && free_of(vb, y) && a.len() == 2 && b.len() == 2 {
                return Ok(x == y && self.eq_top(va, vb)?);
            }
        }
        if a.len() != 2 || b.len() != 2 || !g.is_scalar_rel() || !p.is_scalar_rel() {
            return Ok(false);
        }
        let f = Expr::Sub(a[0].clone().boxed(), a[1].clone().boxed());
        let h = Expr::Sub(b[0].clone().boxed(), b[1].clone().boxed());
        self.proportional(&f, &h)
    }

    /// Whether `f = c · h` for a constant `c ≠ 0`, by evaluation at points.
    fn proportional(&mut self, f: &Expr, h: &Expr) -> R {
        let mut vars = vec![];
        f.vars(&mut vars);
        h.vars(&mut vars);
        if vars.is_empty() {
            return Ok(false);
        }
        let mut ratio: Option<f64> = None;
        let mut usable = 0;
        for t in 0..POINTS {
            let values: Vec<f64> = (0..vars.len()).map(|j| point_value(t, j)).collect();
            let a = eval(f, &vars, &values, &mut self.budget)?;
            let b = eval(h, &vars, &values, &mut self.budget)?;
            if !a.is_finite() || !b.is_finite() {
                if a.is_finite() != b.is_finite() {
                    return Ok(false);
                }
                continue;
            }
            let tiny = 1e-10;
            match (a.abs() < tiny, b.abs() < tiny) {
                (true, true) => continue,
                (true, false) | (false, true) => return Ok(false),
                _ => {}
            }
            let r = a / b;
            match ratio {
                None => ratio = Some(r),
                Some(r0) if (r - r0).abs() > 1e-6 * r0.abs().max(1e-12) => return Ok(false),
                _ => {}
            }
            usable += 1;
        }
        Ok(usable >= 3)
    }

    fn relations(&mut self, s1: &[Expr], o1: &[RelOp], s2: &[Expr], o2: &[RelOp]) -> R {
        if o1 == o2 && self.ordered(s1, s2)? {
            return Ok(true);
        }
        let flip = |o: &RelOp| match o {
            RelOp::Lt => RelOp::Gt,
            RelOp::Gt => RelOp::Lt,
            RelOp::Le => RelOp::Ge,
            RelOp::Ge => RelOp::Le,
            other => *other,
        };
        let flipped: Vec<RelOp> = o2.iter().rev().map(flip).collect();
        let reversed: Vec<Expr> = s2.iter().rev().cloned().collect();
        Ok(o1 == flipped.as_slice() && self.ordered(s1, &reversed)?)
    }

    fn close(&self, g: f64, p: f64) -> bool {
        if g.is_infinite() || p.is_infinite() {
            return g == p;
        }
        if (g - p).abs() <= self.config.abs_tol + self.config.rel_tol * g.abs() {
            return true;
        }
        if self.config.round_to_reference
            && let Some(k) = self.reference_digits
        {
            let scale = 10f64.powi(k as i32);
            return (p * scale).round() == (g * scale).round();
        }
        false
    }

    /// Two arithmetic expressions: exactly, numerically, or as an identity in their variables.
    fn scalar(&mut self, g: &Expr, p: &Expr) -> R {
        let mut vars = vec![];
        g.vars(&mut vars);
        p.vars(&mut vars);
        if vars.is_empty() {
            if let (Some(a), Some(b)) = (exact(g), exact(p)) {
                if a == b {
                    return Ok(true);
                }
                if self.config.exact_integers && a.is_integer() && b.is_integer() {
                    return Ok(false);
                }
            }
            let a = eval(g, &[], &[], &mut self.budget)?;
            let b = eval(p, &[], &[], &mut self.budget)?;
            return Ok(!a.is_nan() && !b.is_nan() && self.close(a, b));
        }
        let mut usable = 0;
        for t in 0..POINTS {
            let values: Vec<f64> = (0..vars.len()).map(|j| point_value(t, j)).collect();
            let a = eval(g, &vars, &values, &mut self.budget)?;
            let b = eval(p, &vars, &values, &mut self.budget)?;
            if !a.is_finite() || !b.is_finite() {
                continue; // outside the common domain (`\ln x + \ln y` at negative x, y)
            }
            if (a - b).abs() > 1e-9 + self.config.rel_tol.max(1e-9) * a.abs().max(b.abs()) {
                return Ok(false);
            }
            usable += 1;
        }
        Ok(usable >= MIN_POINTS)
    }
}

impl Expr {
    /// A relation whose sides are all arithmetic.
    fn is_scalar_rel(&self) -> bool {
        matches!(self, Expr::Rel { sides, .. } if sides.iter().all(Expr::is_scalar))
    }
}

/// Rewrites what has a standard form: `a \pm b` as the set `{a + b, a − b}`, one-variable
/// inequalities as intervals, recursively inside structures.
pub fn canonical(e: &Expr) -> Expr {
    use Expr::*;
    match e {
        PlusMinus(a, b) => Set(vec![Add(a.clone(), b.clone()), Sub(a.clone(), b.clone())]),
        e if e.is_scalar() => match expand_pm(e) {
            Some((plus, minus)) => Set(vec![plus, minus]),
            None => e.clone(),
        },
        Tuple(v) => Tuple(v.iter().map(canonical).collect()),
        List(v) => List(v.iter().map(canonical).collect()),
        Set(v) => Set(v.iter().map(canonical).collect()),
        Union(v) => Union(v.iter().map(canonical).collect()),
        Rel { sides, ops } => inequality_interval(sides, ops).unwrap_or_else(|| Rel {
            sides: sides.iter().map(canonical).collect(),
            ops: ops.clone(),
        }),
        other => other.clone(),
    }
}

/// The value of a number word, `zero` to `twenty`.
fn number_word(w: &str) -> Option<i128> {
    const WORDS: [&str; 21] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
        "twenty",
    ];
    WORDS.iter().position(|x| *x == w).map(|i| i as i128)
}

/// `\frac{-1 \pm \sqrt{5}}{2}` → (`\frac{-1 + \sqrt{5}}{2}`, `\frac{-1 - \sqrt{5}}{2}`): the two
/// branches of the first `\pm` inside an expression; `None` without one.
fn expand_pm(e: &Expr) -> Option<(Expr, Expr)> {
    use Expr::*;
    let one = |a: &Expr, wrap: &dyn Fn(Expr) -> Expr| expand_pm(a).map(|(p, m)| (wrap(p), wrap(m)));
    let two = |a: &Expr, b: &Expr, wrap: &dyn Fn(Expr, Expr) -> Expr| {
        if let Some((p, m)) = expand_pm(a) {
            return Some((wrap(p, b.clone()), wrap(m, b.clone())));
        }
        expand_pm(b).map(|(p, m)| (wrap(a.clone(), p), wrap(a.clone(), m)))
    };
    match e {
        PlusMinus(a, b) => Some((Add(a.clone(), b.clone()), Sub(a.clone(), b.clone()))),
        Neg(a) => one(a, &|x| Neg(x.boxed())),
        Func(f, a) => one(a, &|x| Func(*f, x.boxed())),
        Add(a, b) => two(a, b, &|x, y| Add(x.boxed(), y.boxed())),
        Sub(a, b) => two(a, b, &|x, y| Sub(x.boxed(), y.boxed())),
        Mul(a, b) => two(a, b, &|x, y| Mul(x.boxed(), y.boxed())),
        Div(a, b) => two(a, b, &|x, y| Div(x.boxed(), y.boxed())),
        Pow(a, b) => two(a, b, &|x, y| Pow(x.boxed(), y.boxed())),
        _ => None,
    }
}

/// `x > 3` → `(3, ∞)`, `1 < x \le 2` → `(1, 2]`, `3 \ge x` → `(-∞, 3]`.
fn inequality_interval(sides: &[Expr], ops: &[RelOp]) -> Option<Expr> {
    let is_var = |e: &Expr| matches!(e, Expr::Var(_));
    let constant = |e: &Expr| {
        let mut v = vec![];
        e.vars(&mut v);
        v.is_empty() && e.is_scalar()
    };
    let inf = || Expr::Inf;
    let neg_inf = || Expr::Neg(Expr::Inf.boxed());
    let interval = |lo: Expr, lo_closed, hi: Expr, hi_closed| Expr::Interval {
        lo: lo.boxed(),
        hi: hi.boxed(),
        lo_closed,
        hi_closed,
    };
    use RelOp::*;
    match (sides, ops) {
        ([x, a], [op]) if is_var(x) && constant(a) => Some(match op {
            Gt => interval(a.clone(), false, inf(), false),
            Ge => interval(a.clone(), true, inf(), false),
            Lt => interval(neg_inf(), false, a.clone(), false),
            Le => interval(neg_inf(), false, a.clone(), true),
            _ => return None,
        }),
        ([a, x], [op]) if is_var(x) && constant(a) => Some(match op {
            Lt => interval(a.clone(), false, inf(), false),
            Le => interval(a.clone(), true, inf(), false),
            Gt => interval(neg_inf(), false, a.clone(), false),
            Ge => interval(neg_inf(), false, a.clone(), true),
            _ => return None,
        }),
        ([a, x, b], [o1, o2]) if is_var(x) && constant(a) && constant(b) => match (o1, o2) {
            (Lt | Le, Lt | Le) => Some(interval(a.clone(), *o1 == Le, b.clone(), *o2 == Le)),
            (Gt | Ge, Gt | Ge) => Some(interval(b.clone(), *o2 == Ge, a.clone(), *o1 == Ge)),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin::math::parse::{Limits, parse_answer};

    fn same(g: &str, p: &str) -> bool {
        let config = MathConfig::default();
        let parse = |s: &str| parse_answer(s, Limits::default()).unwrap();
        Equiv::new(&config, None, 100_000)
            .equal(&parse(g), &parse(p))
            .unwrap()
    }

    #[test]
    fn identities_by_evaluation() {
        assert!(same("(x+1)^2", "x^2 + 2x + 1"));
        assert!(!same("(x+1)^2", "x^2 + 1"));
        assert!(same("\\frac{x^2-1}{x-1}", "x+1"));
        assert!(same("\\sqrt{x^2}", "|x|"));
        assert!(!same("\\sqrt{x^2}", "x"));
        assert!(!same("2x", "2y"));
        assert!(same("\\sin^2 x + \\cos^2 x", "1"));
    }

    #[test]
    fn structures() {
        assert!(same("(1, 2)", "(1,2)"));
        assert!(!same("(1, 2)", "(2, 1)"));
        assert!(same("\\{1, 2\\}", "\\{2, 1\\}"));
        assert!(same("x > 3", "(3, \\infty)"));
        assert!(same("1 \\pm \\sqrt{2}", "1 - \\sqrt{2}, 1 + \\sqrt{2}"));
        assert!(same("y = 2x + 1", "2x - y + 1 = 0"));
        assert!(same("x = 3", "3"));
        assert!(!same("3", "4 = 3"));
    }

    #[test]
    fn point_values_are_distinct_and_signed() {
        let mut seen = vec![];
        for t in 0..POINTS {
            for j in 0..3 {
                let v = point_value(t, j);
                assert!(v.abs() >= 0.2 && v.abs() < 3.2);
                assert!(!seen.contains(&v));
                seen.push(v);
            }
        }
        assert!(seen.iter().any(|v| *v < 0.0));
    }
}

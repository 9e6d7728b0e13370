//! Evaluation of arithmetic: exactly over rationals where the tree allows it, else in `f64`
//! at a point (values for the free variables), under a step budget.

use super::expr::{Expr, Func, Rational};

/// The evaluation step budget ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfSteps;

/// A step budget shared by every evaluation of one comparison.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Steps left.
    pub left: u64,
}

impl Budget {
    fn step(&mut self) -> Result<(), OutOfSteps> {
        if self.left == 0 {
            return Err(OutOfSteps);
        }
        self.left -= 1;
        Ok(())
    }
}

/// The exact rational value of pure rational arithmetic (`+ - · /`, integer powers, `%`);
/// `None` for anything else or on overflow.
pub fn exact(e: &Expr) -> Option<Rational> {
    match e {
        Expr::Num(r) => Some(*r),
        Expr::Neg(a) => exact(a)?.checked_neg(),
        Expr::Add(a, b) => exact(a)?.checked_add(exact(b)?),
        Expr::Sub(a, b) => exact(a)?.checked_sub(exact(b)?),
        Expr::Mul(a, b) => exact(a)?.checked_mul(exact(b)?),
        Expr::Div(a, b) => exact(a)?.checked_div(exact(b)?),
        Expr::Percent(a) => exact(a)?.checked_div(Rational::int(100)),
        Expr::Pow(a, b) => {
            let exp = exact(b)?;
            if !exp.is_integer() {
                return None;
            }
            exact(a)?.checked_pow(exp.num)
        }
        _ => None,
    }
}

fn factorial(n: f64) -> f64 {
    if n < 0.0 || n.fract() != 0.0 || n > 170.0 {
        return f64::NAN;
    }
    (1..=n as u64).fold(1.0, |acc, k| acc * k as f64)
}

/// The value at a point: `vars[i]` takes `values[i]`. NaN where the expression has no real
/// value (outside a domain, a structure inside arithmetic, an unknown variable).
pub fn eval(
    e: &Expr,
    vars: &[String],
    values: &[f64],
    budget: &mut Budget,
) -> Result<f64, OutOfSteps> {
    budget.step()?;
    let mut ev = |x: &Expr| eval(x, vars, values, budget);
    Ok(match e {
        Expr::Num(r) => r.to_f64(),
        Expr::Float(f) => *f,
        Expr::Pi => std::f64::consts::PI,
        Expr::E => std::f64::consts::E,
        Expr::Inf => f64::INFINITY,
        Expr::Var(v) => vars
            .iter()
            .position(|n| n == v)
            .map_or(f64::NAN, |i| values[i]),
        Expr::Neg(a) => -ev(a)?,
        Expr::Add(a, b) => ev(a)? + ev(b)?,
        Expr::Sub(a, b) => ev(a)? - ev(b)?,
        Expr::Mul(a, b) => ev(a)? * ev(b)?,
        Expr::Div(a, b) => {
            let d = ev(b)?;
            if d == 0.0 { f64::NAN } else { ev(a)? / d }
        }
        Expr::Pow(a, b) => {
            let (x, y) = (ev(a)?, ev(b)?);
            if x < 0.0 && y.fract() != 0.0 {
                // An odd root of a negative number: (-8)^{1/3} = -2.
                let inv = 1.0 / y;
                if (inv - inv.round()).abs() < 1e-9 && (inv.round() as i64) % 2 != 0 {
                    -(-x).powf(y)
                } else {
                    f64::NAN
                }
            } else {
                x.powf(y)
            }
        }
        Expr::Root(n, a) => {
            let (n, x) = (ev(n)?, ev(a)?);
            if n <= 0.0 || n.fract() != 0.0 {
                f64::NAN
            } else if x < 0.0 && (n as i64) % 2 == 1 {
                -(-x).powf(1.0 / n)
            } else {
                x.powf(1.0 / n)
            }
        }
        Expr::Log(base, a) => {
            let (b, x) = (ev(base)?, ev(a)?);
            x.ln() / b.ln()
        }
        Expr::Func(f, a) => {
            let x = ev(a)?;
            match f {
                Func::Sin => x.sin(),
                Func::Cos => x.cos(),
                Func::Tan => x.tan(),
                Func::Cot => 1.0 / x.tan(),
                Func::Sec => 1.0 / x.cos(),
                Func::Csc => 1.0 / x.sin(),
                Func::Asin => x.asin(),
                Func::Acos => x.acos(),
                Func::Atan => x.atan(),
                Func::Sinh => x.sinh(),
                Func::Cosh => x.cosh(),
                Func::Tanh => x.tanh(),
                Func::Ln => x.ln(),
                Func::Exp => x.exp(),
                Func::Sqrt => x.sqrt(),
                Func::Abs => x.abs(),
                Func::Floor => x.floor(),
                Func::Ceil => x.ceil(),
            }
        }
        Expr::Factorial(a) => factorial(ev(a)?),
        Expr::Binom(n, k) => {
            let (n, k) = (ev(n)?, ev(k)?);
            if k < 0.0 || k > n {
                0.0
            } else {
                factorial(n) / (factorial(k) * factorial(n - k))
            }
        }
        Expr::Percent(a) => ev(a)? / 100.0,
        Expr::PlusMinus(..)
        | Expr::Tuple(_)
        | Expr::List(_)
        | Expr::Set(_)
        | Expr::Interval { .. }
        | Expr::Union(_)
        | Expr::Matrix(_)
        | Expr::Rel { .. }
        | Expr::Text(_) => f64::NAN,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin::math::parse::{Limits, parse_answer};

    fn value(s: &str) -> f64 {
        let e = parse_answer(s, Limits::default()).unwrap();
        eval(&e, &[], &[], &mut Budget { left: 10_000 }).unwrap()
    }

    #[test]
    fn evaluates_latex_by_hand_values() {
        let close =
            |s: &str, v: f64| assert!((value(s) - v).abs() < 1e-12, "`{s}` = {} != {v}", value(s));
        close("\\frac{1+\\sqrt{5}}{2}", (1.0 + 5f64.sqrt()) / 2.0);
        close("\\sqrt[3]{-8}", -2.0);
        close("2^{10}", 1024.0);
        close("\\log_2 8", 3.0);
        close("5!", 120.0);
        close("\\binom{5}{2}", 10.0);
        close("3\\sqrt{2}", 3.0 * 2f64.sqrt());
        close("2\\pi", 2.0 * std::f64::consts::PI);
        close("e^{2}", std::f64::consts::E.powi(2));
        close("|-3|", 3.0);
        close("(-8)^{1/3}", -2.0);
        close("1.2 \\times 10^{3}", 1200.0);
    }

    #[test]
    fn exact_arithmetic() {
        let e = parse_answer("\\frac{1}{3} + \\frac{1}{6}", Limits::default()).unwrap();
        assert_eq!(exact(&e), Rational::new(1, 2));
        let p = parse_answer("2^{-2}", Limits::default()).unwrap();
        assert_eq!(exact(&p), Rational::new(1, 4));
        let s = parse_answer("\\sqrt{2}", Limits::default()).unwrap();
        assert_eq!(exact(&s), None);
    }

    #[test]
    fn the_budget_stops_evaluation() {
        let e = parse_answer(&vec!["x"; 500].join("+"), Limits::default()).unwrap();
        let mut b = Budget { left: 100 };
        assert_eq!(eval(&e, &["x".into()], &[1.0], &mut b), Err(OutOfSteps));
    }
}

//! Python-compatible fixed-point formatting of floats (`"%.1f" % x`).
//!
//! Python rounds the *exact* binary value of the double to the requested number of decimals,
//! ties to even. So `0.25` (exactly representable, a tie) becomes `"0.2"`, `0.35` (stored as
//! 0.34999999999999997…) becomes `"0.3"`, and `1.5625` becomes `"1.6"`. This module computes
//! the exact decimal expansion with integer arithmetic instead of scaling in floating point.

/// Formats `x` like Python's `"%.1f" % x` (and `f"{x:.1f}"`): exact value, round half to
/// even, `-` kept for negative values (including `-0.0`), `inf`/`-inf`/`nan` spelled as Python.
pub fn format_f64_1dp(x: f64) -> String {
    if x.is_nan() {
        return "nan".to_string();
    }
    let sign = if x.is_sign_negative() { "-" } else { "" };
    if x.is_infinite() {
        return format!("{sign}inf");
    }
    // |x| = mantissa · 2^exp exactly.
    let bits = x.abs().to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let frac = bits & ((1u64 << 52) - 1);
    let (mantissa, exp) = if biased == 0 {
        (frac, -1074)
    } else {
        (frac | (1u64 << 52), biased - 1075)
    };
    if mantissa == 0 {
        return format!("{sign}0.0");
    }
    if exp >= 0 {
        // An integer: print mantissa · 2^exp in full.
        return format!("{sign}{}.0", big_decimal(mantissa, exp as u32));
    }
    // tenths = round_half_even(mantissa · 10 / 2^k), k = −exp ≥ 1.
    let k = (-exp) as u32;
    let num = u128::from(mantissa) * 10; // < 2^57
    let tenths: u128 = if k >= 60 {
        // num / 2^k < 1/2 (strictly), so the value rounds to 0 tenths.
        0
    } else {
        let q = num >> k;
        let r = num & ((1u128 << k) - 1);
        let half = 1u128 << (k - 1);
        if r > half || (r == half && q % 2 == 1) {
            q + 1
        } else {
            q
        }
    };
    format!("{sign}{}.{}", tenths / 10, tenths % 10)
}

/// Decimal digits of `mantissa · 2^shift` (arbitrary size).
fn big_decimal(mantissa: u64, shift: u32) -> String {
    if shift < 64 {
        return (u128::from(mantissa) << shift).to_string();
    }
    // Little-endian base-1e9 limbs; multiply by 2 `shift` times.
    const BASE: u64 = 1_000_000_000;
    let mut limbs = vec![
        mantissa % BASE,
        (mantissa / BASE) % BASE,
        mantissa / BASE / BASE,
    ];
    let mut remaining = shift;
    while remaining > 0 {
        let step = remaining.min(30);
        remaining -= step;
        let mut carry = 0u64;
        for limb in limbs.iter_mut() {
            let v = (*limb << step) + carry;
            *limb = v % BASE;
            carry = v / BASE;
        }
        while carry > 0 {
            limbs.push(carry % BASE);
            carry /= BASE;
        }
    }
    while limbs.len() > 1 && limbs.last() == Some(&0) {
        limbs.pop();
    }
    let mut s = limbs.last().copied().unwrap_or(0).to_string();
    for limb in limbs.iter().rev().skip(1) {
        s.push_str(&format!("{limb:09}"));
    }
    s
}

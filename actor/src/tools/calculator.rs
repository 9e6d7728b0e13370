//! `calculator`: evaluates an arithmetic expression — never code.
//!
//! Grammar (recursive descent, f64 arithmetic, whitespace ignored):
//!
//! ```text
//! expr    := term (('+' | '-') term)*
//! term    := unary (('*' | '/') unary)*
//! unary   := ('-' | '+') unary | power
//! power   := primary (('^' | '**') unary)?      right-associative: 2^3^2 = 2^9
//! primary := number | '(' expr ')'
//! number  := digits ['.' digits] | '.' digits
//! ```
//!
//! `×`/`÷`/`−` are accepted for `*`/`/`/`-`. So `-2^2 = -4` (as in mathematics) and
//! `2^-1 = 0.5`. Errors: division by zero, a result or intermediate that is not finite
//! (overflow, `(-8)^(1/3)`), any other character, unbalanced parentheses, an empty expression,
//! more than [`MAX_LEN`] characters or [`MAX_DEPTH`] nested levels (so the parser's recursion is
//! bounded). Integral results print without a decimal point (`7`), others in Rust's shortest
//! round-trip form (`0.1`).

use serde_json::{Map, Value};
use temper_model::chat::JsonValue;

use super::{BoxFuture, Tool, ToolContext, ToolError, ToolOutput};

/// Longest accepted expression, in characters.
pub const MAX_LEN: usize = 1000;
/// Deepest accepted nesting (parentheses and unary signs).
pub const MAX_DEPTH: usize = 64;

/// The `calculator` tool: `{"expression": "..."}` → the value.
#[derive(Debug, Clone, Copy, Default)]
pub struct Calculator;

impl Tool for Calculator {
    fn name(&self) -> &str {
        "calculator"
    }

    fn description(&self) -> &str {
        "Evaluates an arithmetic expression with + - * / ^, parentheses and decimals, and returns its value."
    }

    fn parameters(&self) -> JsonValue {
        JsonValue::parse(
            r#"{"type": "object", "properties": {"expression": {"type": "string", "description": "The expression, e.g. (3.5 + 2) * 4 ^ 2"}}, "required": ["expression"]}"#,
        )
        .expect("the calculator schema is valid JSON")
    }

    fn call<'a>(
        &'a self,
        arguments: &'a Map<String, Value>,
        _: &'a ToolContext,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
        // Bounded work (at most MAX_LEN characters): evaluated in place.
        Box::pin(async move {
            let expression = match arguments.get("expression") {
                Some(Value::String(s)) => s,
                Some(Value::Number(n)) => return Ok(ToolOutput::text(n.to_string())),
                _ => {
                    return Err(ToolError::InvalidArguments(
                        "\"expression\" must be a string, e.g. {\"expression\": \"2 + 3\"}".into(),
                    ));
                }
            };
            let value = evaluate(expression).map_err(ToolError::Failed)?;
            Ok(ToolOutput::text(format_number(value)))
        })
    }
}

/// Evaluates `expression` by the grammar of the module doc; the error says what is wrong.
pub fn evaluate(expression: &str) -> Result<f64, String> {
    if expression.chars().count() > MAX_LEN {
        return Err(format!(
            "the expression is longer than {MAX_LEN} characters"
        ));
    }
    let tokens = lex(expression)?;
    if tokens.is_empty() {
        return Err("the expression is empty".into());
    }
    let mut parser = Parser {
        tokens,
        at: 0,
        depth: 0,
    };
    let value = parser.expr()?;
    if let Some(token) = parser.tokens.get(parser.at) {
        return Err(match token {
            Token::Close => "unbalanced parentheses: unexpected ')'".into(),
            other => format!(
                "unexpected {} after a complete expression",
                other.describe()
            ),
        });
    }
    Ok(value)
}

/// Integral values without a decimal point, others in shortest round-trip form.
fn format_number(value: f64) -> String {
    if value == value.trunc() && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Token {
    Number(f64),
    Plus,
    Minus,
    Times,
    Divide,
    Power,
    Open,
    Close,
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Number(x) => format!("number {x}"),
            Token::Plus => "'+'".into(),
            Token::Minus => "'-'".into(),
            Token::Times => "'*'".into(),
            Token::Divide => "'/'".into(),
            Token::Power => "'^'".into(),
            Token::Open => "'('".into(),
            Token::Close => "')'".into(),
        }
    }
}

fn lex(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let token = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '0'..='9' | '.' => {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                let literal: String = chars[start..i].iter().collect();
                let valid = literal.matches('.').count() <= 1 && literal != ".";
                let value = literal
                    .parse::<f64>()
                    .ok()
                    .filter(|_| valid)
                    .ok_or_else(|| format!("`{literal}` is not a number"))?;
                tokens.push(Token::Number(value));
                continue;
            }
            '+' => Token::Plus,
            '-' | '−' => Token::Minus,
            '*' if chars.get(i + 1) == Some(&'*') => {
                i += 1;
                Token::Power
            }
            '*' | '×' => Token::Times,
            '/' | '÷' => Token::Divide,
            '^' => Token::Power,
            '(' => Token::Open,
            ')' => Token::Close,
            other => {
                return Err(format!(
                    "unsupported character `{other}`: only numbers, + - * / ^ and parentheses are allowed"
                ));
            }
        };
        tokens.push(token);
        i += 1;
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<Token> {
        self.tokens.get(self.at).copied()
    }

    fn expr(&mut self) -> Result<f64, String> {
        let mut value = self.term()?;
        while let Some(op @ (Token::Plus | Token::Minus)) = self.peek() {
            self.at += 1;
            let rhs = self.term()?;
            value = finite(if op == Token::Plus {
                value + rhs
            } else {
                value - rhs
            })?;
        }
        Ok(value)
    }

    fn term(&mut self) -> Result<f64, String> {
        let mut value = self.unary()?;
        while let Some(op @ (Token::Times | Token::Divide)) = self.peek() {
            self.at += 1;
            let rhs = self.unary()?;
            value = if op == Token::Times {
                finite(value * rhs)?
            } else if rhs == 0.0 {
                return Err("division by zero".into());
            } else {
                finite(value / rhs)?
            };
        }
        Ok(value)
    }

    fn unary(&mut self) -> Result<f64, String> {
        match self.peek() {
            Some(sign @ (Token::Plus | Token::Minus)) => {
                self.at += 1;
                let value = self.nested(Self::unary)?;
                Ok(if sign == Token::Minus { -value } else { value })
            }
            _ => self.power(),
        }
    }

    fn power(&mut self) -> Result<f64, String> {
        let base = self.primary()?;
        if self.peek() == Some(Token::Power) {
            self.at += 1;
            let exponent = self.nested(Self::unary)?;
            if base == 0.0 && exponent < 0.0 {
                return Err("division by zero (0 to a negative power)".into());
            }
            return finite(base.powf(exponent));
        }
        Ok(base)
    }

    fn primary(&mut self) -> Result<f64, String> {
        match self.peek() {
            Some(Token::Number(x)) => {
                self.at += 1;
                Ok(x)
            }
            Some(Token::Open) => {
                self.at += 1;
                let value = self.nested(Self::expr)?;
                if self.peek() != Some(Token::Close) {
                    return Err("unbalanced parentheses: missing ')'".into());
                }
                self.at += 1;
                Ok(value)
            }
            Some(other) => Err(format!(
                "expected a number or '(' but found {}",
                other.describe()
            )),
            None => Err("the expression ends where a number was expected".into()),
        }
    }

    /// Runs `f` one nesting level deeper, refusing past [`MAX_DEPTH`].
    fn nested(&mut self, f: fn(&mut Self) -> Result<f64, String>) -> Result<f64, String> {
        if self.depth >= MAX_DEPTH {
            return Err(format!(
                "the expression nests deeper than {MAX_DEPTH} levels"
            ));
        }
        self.depth += 1;
        let value = f(self);
        self.depth -= 1;
        value
    }
}

fn finite(value: f64) -> Result<f64, String> {
    if value.is_finite() {
        Ok(value)
    } else if value.is_nan() {
        Err("the result is not a real number".into())
    } else {
        Err("overflow: the result is too large".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(s: &str) -> f64 {
        evaluate(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn error(s: &str) -> String {
        evaluate(s).expect_err(s)
    }

    #[test]
    fn precedence_associativity_and_signs() {
        assert_eq!(eval("1 + 2 * 3"), 7.0);
        assert_eq!(eval("(1 + 2) * 3"), 9.0);
        assert_eq!(eval("10 - 4 - 3"), 3.0);
        assert_eq!(eval("2 ^ 3 ^ 2"), 512.0);
        assert_eq!(eval("2 ** 10"), 1024.0);
        assert_eq!(eval("-2 ^ 2"), -4.0);
        assert_eq!(eval("(-2) ^ 2"), 4.0);
        assert_eq!(eval("2 ^ -1"), 0.5);
        assert_eq!(eval("--3"), 3.0);
        assert_eq!(eval("-(3 + 4) * +2"), -14.0);
        assert_eq!(eval("12 / 4 / 3"), 1.0);
        assert_eq!(eval("6 × 7 ÷ 2 − 1"), 20.0);
    }

    #[test]
    fn decimals() {
        assert!((eval("0.1 + 0.2") - 0.3).abs() < 1e-15);
        assert_eq!(eval(".5 * 4"), 2.0);
        assert_eq!(eval("3.25"), 3.25);
        assert!(error("1.2.3").contains("not a number"));
        assert!(error(".").contains("not a number"));
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(error("1 / 0"), "division by zero");
        assert_eq!(error("1 / (2 - 2)"), "division by zero");
        assert!(error("0 ^ -1").contains("division by zero"));
        assert!(error("10 ^ 400").contains("overflow"));
        assert!(error("1e308 * 10").contains("unsupported character `e`"));
        assert!(error("(-8) ^ (1/3)").contains("not a real number"));
        assert!(error("2 + x").contains("unsupported character `x`"));
        assert!(error("__import__('os')").contains("unsupported character"));
        assert!(error("(1 + 2").contains("missing ')'"));
        assert!(error("1 + 2)").contains("unexpected ')'"));
        assert!(error("1 +").contains("ends where a number"));
        assert!(error("2 3").contains("unexpected number"));
        assert!(error("* 2").contains("expected a number"));
        assert_eq!(error("   "), "the expression is empty");
        assert!(error(&"1+".repeat(600)).contains("longer than"));
        assert!(
            error(&format!("{}1{}", "(".repeat(100), ")".repeat(100))).contains("nests deeper")
        );
        assert!(error(&"-".repeat(100)).contains("nests deeper"));
    }

    #[test]
    fn the_tool_formats_and_validates() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let call = |args: Value| {
            runtime.block_on(Calculator.call(args.as_object().unwrap(), &ToolContext::default()))
        };
        assert_eq!(
            call(serde_json::json!({"expression": "6 * 7"}))
                .unwrap()
                .text,
            "42"
        );
        assert_eq!(
            call(serde_json::json!({"expression": "1 / 4"}))
                .unwrap()
                .text,
            "0.25"
        );
        assert_eq!(
            call(serde_json::json!({"expression": "-3"})).unwrap().text,
            "-3"
        );
        assert!(matches!(
            call(serde_json::json!({"expr": "1"})),
            Err(ToolError::InvalidArguments(_))
        ));
        assert_eq!(
            call(serde_json::json!({"expression": "1/0"})),
            Err(ToolError::Failed("division by zero".into()))
        );
        let def = Calculator.definition();
        assert_eq!(
            def.get("function")
                .and_then(|f| f.get("name"))
                .and_then(JsonValue::as_str),
            Some("calculator")
        );
    }
}

use super::*;
use crate::symtab::{Symbol, SymbolKind};
use crate::testutil::{FakeTarget, registers};

fn image() -> KernelImage {
    let sym = |value, name: &str| Symbol {
        value,
        size: 0x40,
        kind: SymbolKind::Function,
        name: name.to_string(),
        raw_name: name.to_string(),
    };
    KernelImage::from_symbols(
        vec![
            sym(0x1000, "kernel::kern::sched::mi_switch"),
            sym(0x2000, "kernel::a::run"),
            sym(0x3000, "kernel::b::run"),
            sym(0x4000, "kernel::x::beef"),
        ],
        vec![(0x1000, 0x5000)],
        0x10_0000,
    )
}

fn eval(text: &str) -> Result<u64, ExprError> {
    let image = image();
    let mut target = FakeTarget::default();
    target.map_words(0x8000, &[0x1122_3344_5566_7788]);
    let regs = registers(0xaaaa, 0x7000, 0x7100);
    let env = Env { image: &image, target: &target, registers: Some(&regs), dot: 0x500 };
    evaluate(&env, text)
}

#[test]
fn numbers_default_to_hex_with_prefixes() {
    assert_eq!(eval("10"), Ok(0x10));
    assert_eq!(eval("0x10"), Ok(0x10));
    assert_eq!(eval("0t10"), Ok(10));
    assert_eq!(eval("0o17"), Ok(0o17));
    assert_eq!(eval("0b101"), Ok(5));
    assert_eq!(eval("0X1F"), Ok(0x1f));
    assert_eq!(eval("deadbeef"), Ok(0xdead_beef));
    assert_eq!(eval("ffffffffffffffff"), Ok(u64::MAX));
}

#[test]
fn bad_numbers() {
    assert_eq!(eval("10g"), Err(ExprError::BadNumber("10g".into())));
    assert_eq!(eval("0t1a"), Err(ExprError::BadNumber("0t1a".into())));
    assert_eq!(eval("0x"), Err(ExprError::BadNumber("0x".into())));
    assert_eq!(eval("1ffffffffffffffff"), Err(ExprError::BadNumber("1ffffffffffffffff".into())));
}

#[test]
fn precedence_and_associativity() {
    assert_eq!(eval("1 + 2 * 3"), Ok(7));
    assert_eq!(eval("(1 + 2) * 3"), Ok(9));
    assert_eq!(eval("10 - 4 - 2"), Ok(0xa));
    assert_eq!(eval("1 << 4 + 1"), Ok(0x20));
    assert_eq!(eval("f & 3 | 8"), Ok(0xb));
    assert_eq!(eval("6 ^ 3 & 1"), Ok(7));
    assert_eq!(eval("0t17 % 0t5"), Ok(2));
    assert_eq!(eval("-1"), Ok(u64::MAX));
    assert_eq!(eval("~0 >> 0t60"), Ok(0xf));
    assert_eq!(eval("1 << 0t64"), Ok(0));
    assert_eq!(eval("- - 5"), Ok(5));
    assert_eq!(eval("!0"), Ok(1));
}

#[test]
fn errors_are_errors_not_panics() {
    assert_eq!(eval("1 / 0"), Err(ExprError::DivisionByZero));
    assert_eq!(eval("1 % (2 - 2)"), Err(ExprError::DivisionByZero));
    assert_eq!(eval(""), Err(ExprError::Empty));
    assert_eq!(eval("1 +"), Err(ExprError::UnexpectedEnd));
    assert_eq!(eval("(1 + 2"), Err(ExprError::MissingParen));
    assert_eq!(eval("1 2"), Err(ExprError::Syntax("0x2".into())));
    assert_eq!(eval("1 ) "), Err(ExprError::Syntax(")".into())));
    assert_eq!(eval("1 @ 2"), Err(ExprError::Syntax("@".into())));
    assert_eq!(eval("\"abc"), Err(ExprError::UnterminatedQuote));
    assert!(matches!(eval("nosuchsym"), Err(ExprError::Symbol(LookupError::NotFound(_)))));
    assert!(matches!(eval("run"), Err(ExprError::Symbol(LookupError::Ambiguous { .. }))));
    assert_eq!(eval("$nope"), Err(ExprError::UnknownRegister("nope".into())));
    assert!(matches!(eval("*1234"), Err(ExprError::Read(_))));
    assert_eq!(eval(&format!("{}1{}", "(".repeat(5000), ")".repeat(5000))), Err(ExprError::TooDeep));
    assert_eq!(eval(&"-".repeat(5000)), Err(ExprError::TooDeep));
    assert_eq!(eval(&format!("{}1{}", "(".repeat(50), ")".repeat(50))), Ok(1));
}

#[test]
fn symbols_registers_dot_and_deref() {
    assert_eq!(eval("mi_switch"), Ok(0x10_1000));
    assert_eq!(eval("sched::mi_switch + 8"), Ok(0x10_1008));
    assert_eq!(eval("kernel::kern::sched::mi_switch"), Ok(0x10_1000));
    assert_eq!(eval("\"kernel::a::run\""), Ok(0x10_2000));
    assert_eq!(eval("a::run"), Ok(0x10_2000));
    // A symbol wins over the hex reading of the same word.
    assert_eq!(eval("beef"), Ok(0x10_4000));
    assert_eq!(eval("$rip"), Ok(0xaaaa));
    assert_eq!(eval("$RSP + 8"), Ok(0x7008));
    assert_eq!(eval("."), Ok(0x500));
    assert_eq!(eval(". + 10"), Ok(0x510));
    assert_eq!(eval("*8000"), Ok(0x1122_3344_5566_7788));
    assert_eq!(eval("*(7ff8 + 8) & ff"), Ok(0x88));
    assert_eq!(eval("2 * *8000 >> 0t60"), Ok(0x2));
}

#[test]
fn no_registers_without_cpu() {
    let image = image();
    let target = FakeTarget::default();
    let env = Env { image: &image, target: &target, registers: None, dot: 0 };
    assert_eq!(evaluate(&env, "$rip"), Err(ExprError::NoRegisters));
}

#[test]
fn split_count_at_comma() {
    assert_eq!(split_count(" foo + 8 , 4"), ("foo + 8", Some("4")));
    assert_eq!(split_count("foo"), ("foo", None));
    assert_eq!(split_count("\"a<b, c>\",3"), ("\"a<b, c>\"", Some("3")));
    assert_eq!(split_count(",3"), ("", Some("3")));
}

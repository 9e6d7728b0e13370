use serde_json::json;

use super::*;
use crate::builtin::score_now;
use temper_model::chat::Message;

fn reward(config: CodeSwitchingConfig) -> CodeSwitching {
    CodeSwitching::new(config).unwrap()
}

/// The score of `response` to a sample whose metadata says `language`.
fn score_in(language: &str, response: &str) -> Option<f64> {
    let sample = Sample::new("", response).with_metadata(json!({ "language": language }));
    score_now(&reward(CodeSwitchingConfig::default()), &[sample]).scores[0]
        .clone()
        .unwrap()
}

fn share_in(language: &str, response: &str) -> f64 {
    -score_in(language, response).expect("applicable")
}

#[test]
fn clean_responses_in_each_language_score_zero() {
    let cases = [
        (
            "ko",
            "이 문제의 답은 삼입니다. 두 개에 하나를 더하면 세 개가 됩니다.",
        ),
        ("zh", "这个问题的答案是三。两个加一个等于三个。"),
        (
            "ja",
            "この問題の答えは三です。二つに一つを足すと三つになります。",
        ),
        (
            "en",
            "The answer is three. Two plus one makes three, as we can check.",
        ),
        (
            "de",
            "Die Antwort ist drei. Zwei plus eins ergibt drei, wie man leicht sieht.",
        ),
        ("ru", "Ответ три. Два плюс один равно трём."),
    ];
    for (lang, response) in cases {
        assert_eq!(score_in(lang, response), Some(0.0), "{lang}: {response}");
    }
}

#[test]
fn korean_with_an_english_clause_is_penalised_by_its_share() {
    let response = "이 문제의 답은 삼입니다, but I am not completely sure about it.";
    let share = share_in("ko", response);
    let english: usize = "butIamnotcompletelysureaboutit".chars().count();
    let korean: usize = "이문제의답은삼입니다".chars().count();
    let expected = english as f64 / (english + korean) as f64;
    assert!((share - expected).abs() < 1e-12, "{share} vs {expected}");
}

#[test]
fn english_with_a_german_sentence_is_penalised() {
    let response = "The answer is three because two plus one makes three. \
                    Ich bin mir aber nicht ganz sicher, ob das stimmt.";
    let share = share_in("en", response);
    assert!(share > 0.3 && share < 0.7, "{share}");
    // A German loan word inside an English sentence is not a switch.
    assert_eq!(
        share_in("en", "The Zeitgeist of the time was very optimistic."),
        0.0
    );
}

#[test]
fn kana_in_a_chinese_answer_is_japanese_but_kanji_in_japanese_is_not() {
    let share = share_in("zh", "答案是三。これは日本語の文です。");
    let japanese = "これは日本語の文です".chars().count();
    let chinese = "答案是三".chars().count();
    assert!((share - japanese as f64 / (japanese + chinese) as f64).abs() < 1e-12);
    // Han-only sentences in Japanese are Japanese.
    assert_eq!(share_in("ja", "答えは三です。問題解決。"), 0.0);
}

#[test]
fn short_hanja_is_korean_but_a_chinese_sentence_is_not() {
    assert_eq!(share_in("ko", "대한민국(大韓民國)은 민주공화국이다."), 0.0);
    let share = share_in("ko", "답은 삼입니다。这个问题的答案是三个苹果。");
    assert!(share > 0.5, "{share}");
}

#[test]
fn code_math_quotes_and_urls_are_not_judged() {
    let response = "답은 다음과 같습니다:\n```python\nprint('the answer is three')\n```\n\
                    수식은 $x + y = 3$ 이고 `let answer = three;` 입니다. \
                    \"This is a quoted English sentence\" 라고 했습니다. https://example.com/english-words";
    assert_eq!(share_in("ko", response), 0.0);
}

#[test]
fn gaming_hiding_foreign_text_in_code_is_not_penalised_by_design() {
    // Documented trade-off: code spans are never judged, whatever they hold.
    let hidden =
        "The answer is three.\n```\nDie Antwort ist drei, und ich erkläre es auf Deutsch.\n```";
    assert_eq!(share_in("en", hidden), 0.0);
}

#[test]
fn responses_without_letters_are_not_applicable() {
    for response in [
        "",
        "   ",
        "😀😀🎉",
        "12345",
        "3.14 + 2 = 5.14",
        "```\ncode only\n```",
    ] {
        assert_eq!(score_in("ko", response), None, "{response:?}");
    }
}

#[test]
fn short_latin_runs_are_neutral_in_other_scripts() {
    // An acronym and a unit in a Korean sentence are not a switch.
    assert_eq!(share_in("ko", "GPU 메모리는 80 GB 입니다."), 0.0);
}

#[test]
fn expected_language_comes_from_config_then_metadata_then_prompt() {
    let ko_prompt =
        Sample::new("", "The answer is three, I am quite sure of it.").with_messages(vec![
            Message::system("You are a helpful assistant."),
            Message::user("이 문제의 답은 무엇입니까?"),
        ]);
    let default = reward(CodeSwitchingConfig::default());
    let out = score_now(&default, std::slice::from_ref(&ko_prompt));
    assert_eq!(out.scores[0], Ok(Some(-1.0)));
    assert_eq!(out.components["mixed_share"], vec![Some(1.0)]);

    // Metadata overrides the prompt.
    let en_meta = ko_prompt.clone().with_metadata(json!({"language": "en"}));
    assert_eq!(score_now(&default, &[en_meta]).scores[0], Ok(Some(0.0)));

    // The config overrides both.
    let fixed = reward(CodeSwitchingConfig {
        language: Some("ko".into()),
        ..Default::default()
    });
    let en_meta = ko_prompt.with_metadata(json!({"language": "en"}));
    assert_eq!(score_now(&fixed, &[en_meta]).scores[0], Ok(Some(-1.0)));

    // Prompt detection: German text, Japanese (kana) and Chinese.
    let detect = |p: &str| default.detect(p).map(|e| (e.family, e.language));
    assert_eq!(
        detect("Wie viele Äpfel liegen auf dem Tisch? Bitte erkläre deine Antwort."),
        Some((Family::Latin, Some("de".into())))
    );
    assert_eq!(
        detect("りんごはいくつありますか？"),
        Some((Family::Cjk, Some("ja".into())))
    );
    assert_eq!(
        detect("桌子上有几个苹果？"),
        Some((Family::Cjk, Some("zh".into())))
    );
    assert_eq!(detect("123 + 456 = ?"), None);
}

#[test]
fn a_prompt_without_letters_or_a_bad_metadata_language() {
    let r = reward(CodeSwitchingConfig::default());
    let out = score_now(
        &r,
        &[
            Sample::new("2 + 2 = ?", "The answer is four."),
            Sample::new("", "x").with_metadata(json!({"language": "xx"})),
            Sample::new("", "x").with_metadata(json!({"language": 3})),
        ],
    );
    assert_eq!(out.scores[0], Ok(None));
    let reason = out.scores[1].clone().unwrap_err().reason;
    assert!(reason.contains("`language` = \"xx\""), "{reason}");
    let reason = out.scores[2].clone().unwrap_err().reason;
    assert!(reason.contains("must be a string"), "{reason}");
}

#[test]
fn allow_accepts_extra_languages_and_scripts() {
    let response = "이 문제의 답은 삼입니다, but I am not completely sure about it.";
    let with = |allow: &[&str]| {
        let r = reward(CodeSwitchingConfig {
            language: Some("ko".into()),
            allow: allow.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        });
        -score_now(&r, &[Sample::new("", response)]).scores[0]
            .clone()
            .unwrap()
            .unwrap()
    };
    assert!(with(&[]) > 0.5);
    assert_eq!(with(&["en"]), 0.0);
    assert_eq!(with(&["latin"]), 0.0);
    assert!(with(&["de"]) > 0.5);
}

#[test]
fn config_rejects_unknown_codes_naming_the_field() {
    let bad = [
        (
            CodeSwitchingConfig {
                language: Some("kor".into()),
                ..Default::default()
            },
            "language",
        ),
        (
            CodeSwitchingConfig {
                allow: vec!["klingon".into()],
                ..Default::default()
            },
            "allow",
        ),
        (
            CodeSwitchingConfig {
                latin_candidates: vec!["ko".into()],
                ..Default::default()
            },
            "latin_candidates",
        ),
    ];
    for (config, field) in bad {
        let err = config.validate().unwrap_err().to_string();
        assert!(err.starts_with(&format!("invalid `{field}`")), "{err}");
    }
    let parsed: crate::RewardSetConfig = serde_json::from_str(
        r#"{"rewards": [{"kind": "code_switching", "weight": 0.5, "language": "ko",
            "min_segment_chars": 4, "allow": ["latin"]}]}"#,
    )
    .unwrap();
    parsed.validate().unwrap();
    let err = serde_json::from_str::<crate::RewardSetConfig>(
        r#"{"rewards": [{"kind": "code_switching", "lang": "ko"}]}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("unknown field `lang`"), "{err}");
}

#[test]
fn sentences_split_on_punctuation_but_not_inside_numbers() {
    assert_eq!(
        sentences("It is 3.5 m. Next! 答案。下一个"),
        ["It is 3.5 m.", " Next!", " 答案。", "下一个"]
    );
}

"""Articles' language and body spacing, where articles are assembled: detected from the body unless the page says."""
from __future__ import annotations

from conftest import SEEDS, html_page

from commentary import stages
from commentary.ingest import discover

FRENCH = ("Le gouvernement a annoncé mardi que les négociations reprendraient la semaine prochaine, "
          "après des mois de désaccord sur le budget et sur la réforme des retraites.")


def _articles(folder):
    ingested, _, _ = stages.ingest(folder, discover(folder))
    articles, _, _, _, _ = stages.clean(ingested)
    return {row["source_path"]: row for row in articles.iter_rows(named=True)}


def test_every_seed_is_detected_as_english_and_says_where_that_came_from():
    rows = _articles(SEEDS)
    assert len(rows) == 5
    assert {(row["language"], row["field_sources"]["language"]) for row in rows.values()} == {("en", "detected:py3langid")}


def test_the_pages_own_language_comes_first_and_other_languages_are_detected(tmp_path, articles):
    title, body = articles[0]
    (tmp_path / "declared.html").write_text(html_page(title, body).replace("<html>", '<html lang="en-GB">'))
    (tmp_path / "sidecar.txt").write_text(f"{title}\n\n{body}\n")
    (tmp_path / "sidecar.txt.meta.json").write_text('{"language": "en-US"}')
    (tmp_path / "french.txt").write_text(f"Les négociations reprennent\n\n{FRENCH}\n\n{FRENCH.upper()}\n")
    rows = _articles(tmp_path)
    assert rows["declared.html"]["language"] == "en-GB" and rows["declared.html"]["field_sources"]["language"] != "detected:py3langid"
    assert (rows["sidecar.txt"]["language"], rows["sidecar.txt"]["field_sources"]["language"]) == ("en-US", "sidecar")
    assert (rows["french.txt"]["language"], rows["french.txt"]["field_sources"]["language"]) == ("fr", "detected:py3langid")


def test_bodies_have_no_break_spaces_and_tabs_as_plain_spaces_like_the_other_fields(tmp_path, articles):
    title, body = articles[0]
    first, rest = body.split("\n\n", 1)
    spaced = first.replace(" ", "\u00a0", 3).replace(" ", "\t \t", 1)
    (tmp_path / "spaced.txt").write_text(f"{title}\n\n{spaced}\n\n{rest}\n")
    row = _articles(tmp_path)["spaced.txt"]
    assert "\u00a0" not in row["body"] and "\t" not in row["body"] and "  " not in row["body"]
    assert row["body"].split("\n\n")[0] == first and row["body"].count("\n\n") == body.count("\n\n")
    assert row["body_sha256"] == stages.body_fingerprint(body)


def test_bodies_detected_together_get_the_answers_py3langid_gives_each_alone(articles):
    """The shard-wide walk of the model gives, text by text, what ``classify`` gives (and the same threshold)."""
    from commentary import language

    texts = [body[start:] for _, body in articles for start in (0, 300)] + [
        FRENCH, FRENCH.upper(), "Переговоры между двумя странами возобновились на этой неделе, и обе стороны довольны.",
        "朝鲜半岛局势近日再度紧张。美国和韩国官员表示，他们愿意在没有先决条件的情况下与平壤恢复对话。",
        "北朝鮮との交渉は今週再開され、双方は協議が有益だったと述べた。専門家は、信頼の構築には時間がかかると指摘している。", "12345 67890 " * 8, "😀" * 60, "too short", ""]
    identifier = language._identifier()
    expected = [None if len(text) < language.MIN_CHARS else label if probability >= language.MIN_PROBABILITY else None
                for text in texts for label, probability in [identifier.classify(text[:language.MAX_CHARS])]]
    assert language.detect_all(texts) == expected
    assert {"en", "fr", "ru", "zh", "ja", None} <= set(expected)


def test_a_body_whose_detection_fails_leaves_its_language_empty_and_the_shard_clean(tmp_path, articles, monkeypatch):
    from commentary import language

    detect_all = language.detect_all

    def failing_on_french(bodies):
        if any("gouvernement" in body for body in bodies):
            raise ValueError("model error")
        return detect_all(bodies)

    monkeypatch.setattr(language, "detect_all", failing_on_french)
    title, body = articles[0]
    (tmp_path / "english.txt").write_text(f"{title}\n\n{body}\n")
    (tmp_path / "french.txt").write_text(f"Le budget\n\n{FRENCH}\n\n{FRENCH}\n")
    rows = _articles(tmp_path)
    assert rows["english.txt"]["language"] == "en" and rows["french.txt"]["language"] is None

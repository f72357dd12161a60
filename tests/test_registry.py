import pytest

from introspect.registry import ConfigError, Registry


def test_duplicate_names_raise():
    reg = Registry("thing")
    reg.register("a")(lambda: 1)
    with pytest.raises(KeyError, match="registered twice"):
        reg.register("a")(lambda: 2)


def test_unknown_name_lists_choices():
    reg = Registry("thing")
    reg.register("alpha")(lambda: 1)
    reg.register("beta")(lambda: 2)
    with pytest.raises(ConfigError, match=r"method\.name: unknown thing 'gamma'; choices: alpha, beta"):
        reg.get("gamma", "method.name")


def test_check_coerces_and_rejects():
    reg = Registry("thing")

    @reg.register("f")
    def f(ctx, *, rate: float = 0.5, steps: int = 2, names: list[int] = ()):
        return rate, steps

    assert reg.check("f", {"rate": 1}, "x") == {"rate": 1.0, "steps": 2, "names": ()}
    assert reg.check("f", {"rate": "1e-4"}, "x")["rate"] == pytest.approx(1e-4)
    with pytest.raises(ConfigError, match=r"x\.steps: expected an integer, got 2\.5"):
        reg.check("f", {"steps": 2.5}, "x")
    with pytest.raises(ConfigError, match=r"x\.nope: not an option of thing 'f'; choices: names, rate, steps"):
        reg.check("f", {"nope": 1}, "x")
    with pytest.raises(ConfigError, match=r"x\.rate: expected a number, got 'fast'"):
        reg.check("f", {"rate": "fast"}, "x")

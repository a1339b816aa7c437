"""The CLI's corpus of bad inputs (tests/it/corpus.rs), where it applies: the right exception
type, and the CLI's message naming the problem."""

import struct

import numpy as np
import pytest

import nashmp


def npy_header(descr: str, shape: str, fortran: bool = False) -> bytes:
    d = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape)
    total = -(-(10 + len(d) + 1) // 64) * 64
    d = d.ljust(total - 10 - 1) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(d)) + d.encode()


def f64s(v) -> bytes:
    return np.asarray(v, dtype="<f8").tobytes()


CYC3 = [0.5, 1.0, 0.0, 0.0, 0.5, 1.0, 1.0, 0.0, 0.5]
VALID = npy_header("<f8", "(3, 3)") + f64s(CYC3)


def game_with(i, j, v) -> bytes:
    p = list(CYC3)
    p[i * 3 + j] = v
    return npy_header("<f8", "(3, 3)") + f64s(p)


def container(js: str) -> bytes:
    b = b"\x93NASHMP\x01" + struct.pack("<I", len(js)) + js.encode()
    return b + b"\0" * (-len(b) % 4096)


FILES = [
    ("empty", b"", ["too short"]),
    ("cut", VALID[:40], ["header truncated"]),
    ("short", VALID[:-8], ["truncated", "72", "64"]),
    ("long", VALID + b"\0" * 8, ["trailing data"]),
    ("huge", npy_header("<f4", "(1099511627776, 1099511627776)") + b"\0" * 64, ["overflows"]),
    ("lying", npy_header("<f8", "(1048576, 1048576)") + b"\0" * 64,
     ["truncated", "8796093022208"]),
    ("i4", npy_header("<i4", "(3, 3)") + b"\0" * 36, ["<i4"]),
    ("be", npy_header(">f8", "(3, 3)") + b"\0" * 72, [">f8"]),
    ("vec", npy_header("<f8", "(9,)") + b"\0" * 72, ["square"]),
    ("rect", npy_header("<f8", "(3, 4)") + b"\0" * 96, ["square", "[3, 4]"]),
    ("fortran", npy_header("<f8", "(3, 3)", True) + f64s(CYC3), ["Fortran"]),
    ("nan", game_with(0, 1, float("nan")), ["P[0][1]", "not finite"]),
    ("inf", game_with(1, 2, float("inf")), ["P[1][2]", "inf"]),
    ("big", game_with(0, 1, 1.5), ["1.5", "outside [0, 1]"]),
    ("neg", game_with(0, 2, -0.25), ["-0.25", "outside [0, 1]"]),
    ("skew", game_with(0, 1, 0.75), ["skew", "P[0][1]"]),
    ("diag", game_with(2, 2, 0.625), ["P[2][2]"]),
    ("v3", b"\x93NUMPY\x03\x00\xff\xff\xff\xff{}", ["exceeds the cap"]),
    ("magic.nmp", b"\x93NASHMP\x01", ["too short"]),
    ("hcap.nmp", b"\x93NASHMP\x01\xff\xff\xff\xff{}", ["exceeds the cap"]),
    ("v9.nmp", b"\x93NASHMP\x09\x02\x00\x00\x00{}", ["version 9"]),
    ("garbage.nmp", container('{"format": nope'), ["not a valid nashmp game"]),
    ("layout.nmp", container('{"format":"nashmp-game","version":1,"n":3,"layout":"sparse"}'),
     ["sparse"]),
    ("dense40.nmp", container('{"format":"nashmp-game","version":1,"n":1099511627776,'
                              '"layout":"dense","dtype":"f32"}'), []),
]


@pytest.mark.parametrize("name,data,needles", FILES, ids=[f[0] for f in FILES])
def test_bad_game_files_raise_value_error_naming_the_problem(tmp_path, name, data, needles):
    path = tmp_path / (name if "." in name else name + ".npy")
    path.write_bytes(data)
    with pytest.raises(ValueError) as e:
        nashmp.Game.open(path)
    msg = str(e.value)
    for needle in [path.name, *needles]:
        assert needle in msg, msg


def test_missing_file_and_directory_raise_os_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.npy"):
        nashmp.Game.open(tmp_path / "missing.npy")
    (tmp_path / "adir.npy").mkdir()
    with pytest.raises(OSError, match="adir.npy"):
        nashmp.Game.open(tmp_path / "adir.npy")
    with pytest.raises(FileNotFoundError):
        nashmp.solve(tmp_path / "missing.npy", 0.1)


BAD_ARRAYS = [
    ("nan", lambda p: p.__setitem__((0, 1), np.nan), ["P[0][1]", "not finite"]),
    ("inf", lambda p: p.__setitem__((1, 2), np.inf), ["P[1][2]", "inf"]),
    ("1.5", lambda p: p.__setitem__((0, 1), 1.5), ["1.5", "outside [0, 1]"]),
    ("-0.25", lambda p: p.__setitem__((0, 2), -0.25), ["-0.25", "outside [0, 1]"]),
    ("skew", lambda p: p.__setitem__((0, 1), 0.75), ["skew", "P[0][1]"]),
    ("diag", lambda p: p.__setitem__((2, 2), 0.625), ["P[2][2]"]),
]


@pytest.mark.parametrize("name,edit,needles", BAD_ARRAYS, ids=[a[0] for a in BAD_ARRAYS])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bad_arrays_are_validated_like_files(name, edit, needles, dtype):
    p = np.array(CYC3, dtype=dtype).reshape(3, 3)
    edit(p)
    with pytest.raises(ValueError) as e:
        nashmp.Game.from_numpy(p, name="mine")
    for needle in ["mine", *needles]:
        assert needle in str(e.value), str(e.value)


@pytest.mark.parametrize("array,needle", [
    (np.zeros((3, 3), dtype=np.int32), "dtype int32"),
    (np.zeros((3, 3), dtype=">f8"), "dtype >f8"),
    (np.full(9, 0.5), "square"),
    (np.full((3, 4), 0.5), "[3, 4]"),
    (np.full((2, 2, 2), 0.5), "square"),
    (np.zeros((0, 0)), "square"),
    (np.asfortranarray(np.array(CYC3).reshape(3, 3)), "C-contiguous"),
    (np.full((6, 6), 0.5)[::2, ::2], "C-contiguous"),
    ([[0.5]], "numpy.ndarray"),
])
def test_unusable_arrays_raise_value_error(array, needle):
    with pytest.raises(ValueError, match=None) as e:
        nashmp.Game.from_numpy(array)
    assert needle in str(e.value), str(e.value)


def game3():
    return nashmp.Game.from_numpy(np.array(CYC3).reshape(3, 3))


@pytest.mark.parametrize("ref,needles", [
    ([0.5, 0.5], ["2 entries", "3 actions"]),
    ([0.5, 0.5, 0.0], ["entry 2 is 0"]),
    ([0.7, 0.5, -0.2], ["entry 2 is -0.2"]),
    ([0.5, 0.5, 0.5], ["sum to 1.5"]),
    ([np.nan, 0.5, 0.5], ["entry 0 is NaN"]),
])
def test_bad_reference_policies(ref, needles):
    for call in (lambda: nashmp.solve(game3(), 0.1, ref=np.array(ref), iters=2),
                 lambda: nashmp.equilibrium(game3(), 0.1, ref=np.array(ref)),
                 lambda: nashmp.solve(game3(), 0.1, init=np.array(ref), iters=2)):
        with pytest.raises(ValueError) as e:
            call()
        for needle in needles:
            assert needle in str(e.value), str(e.value)


def test_bad_policy_files(tmp_path):
    (tmp_path / "mat.npy").write_bytes(VALID)
    with pytest.raises(ValueError, match="1-D"):
        nashmp.solve(game3(), 0.1, ref=tmp_path / "mat.npy", iters=2)
    (tmp_path / "init.npy").write_bytes(npy_header("<f8", "(3,)") + b"\0" * 16)
    with pytest.raises(ValueError, match="truncated"):
        nashmp.solve(game3(), 0.1, init=str(tmp_path / "init.npy"), iters=2)
    with pytest.raises(OSError, match="is a directory|Is a directory"):
        nashmp.solve(game3(), 0.1, ref=tmp_path, iters=2)
    with pytest.raises(FileNotFoundError):
        nashmp.equilibrium(game3(), 0.1, ref=tmp_path / "nope.npy")


@pytest.mark.parametrize("kwargs,needle", [
    (dict(beta=float("nan")), "β must be finite"),
    (dict(beta=float("inf")), "β must be finite"),
    (dict(beta=-1.0), "β must be finite"),
    (dict(alpha=float("inf")), "α must be positive and finite"),
    (dict(eta=float("nan")), "NaN"),
    (dict(alpha=1.0, eta=0.1), "not both"),
    (dict(tol=float("nan")), "tol"),
    (dict(iters=-1), "iters"),
    (dict(threads=0), "threads must be at least 1"),
    (dict(oracle="sampled", samples=0), "samples"),
    (dict(batch=4), "batch applies only to oracle='pg'"),
    (dict(oracle="sampled"), "needs samples"),
    (dict(oracle="magic"), "unknown oracle"),
    (dict(algos=["nash-mp", "sgd"]), "unknown algorithm \"sgd\""),
    (dict(algos=[]), "no algorithm"),
    (dict(metrics="most"), "unknown metrics"),
    (dict(beta=0.0, metrics="full"), "unique only for β > 0"),
    (dict(metrics="none", tol=0.1), "--metrics none"),
])
def test_bad_parameters_raise_value_error(kwargs, needle):
    args = dict(beta=0.1, iters=2)
    args.update(kwargs)
    with pytest.raises(ValueError) as e:
        nashmp.solve(game3(), **args)
    assert needle in str(e.value), str(e.value)


def test_bad_command_arguments_raise_value_error(tmp_path):
    with pytest.raises(ValueError, match="mixture|invalid value"):
        nashmp.generate("nonsense", 10, path=tmp_path / "g.npy")
    with pytest.raises(ValueError, match=r"name it .*\.nmp"):
        nashmp.generate("uniform", 10, path=tmp_path / "g.npy", dtype="u16")
    with pytest.raises(ValueError, match="beta"):
        nashmp.rank(tmp_path / "g.npy", beta=-1.0)
    with pytest.raises(FileNotFoundError):
        nashmp.from_judgements(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match="β|beta"):
        nashmp.equilibrium(game3(), float("nan"))

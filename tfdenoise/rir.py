"""Room impulse responses of a shoebox room, simulated in numpy (no pyroomacoustics).

Image sources (Allen & Berkley 1979, "Image method for efficiently simulating small-room
acoustics", JASA 65(4)) up to a reflection order, then an exponentially decaying diffuse tail:

- the room is ``Lx x Ly x Lz`` metres with one absorption coefficient ``alpha`` on every wall,
  i.e. a pressure reflection coefficient ``beta = sqrt(1 - alpha)``;
- along one axis the images of a source at ``x_s`` are indexed by ``p`` in Z, ``|p|``
  reflections: ``x_p = x_s + p L`` for even ``p`` and ``(p + 1) L - x_s`` for odd ``p``; an image
  ``(px, py, pz)`` of order ``n = |px| + |py| + |pz|`` at distance ``r`` from the microphone
  adds ``beta ** n / (4 pi r)`` at the sample nearest to ``r / c`` (nearest-sample taps);
- along each axis the image distance grows with ``|p|``, so no image of order above ``N + 1``
  arrives before the first one of order ``N + 1``: the image sum of orders ``<= N`` is
  complete up to that time, ``t_c``. From ``t_c`` on the response is Gaussian noise whose
  envelope decays by 60 dB in RT60 seconds, ``sigma(t) = sigma_c 10 ** (-3 (t - t_c) / RT60)``,
  its level ``sigma_c`` matched to the image energy in the ``TAIL_FIT_S`` before ``t_c``
  (a hybrid in the spirit of the image + stochastic tail of pyroomacoustics, not its code);
- the absorption is drawn from RT60 with Sabine's formula ``RT60 = 0.161 V / (S alpha)``,
  ``V`` the volume and ``S`` the wall area (``EYRING`` is ``0.161 V / (-S ln(1 - alpha))``;
  :func:`absorption` has both; tools/rir_check.py measures how the image part decays with each);
- :func:`estimate_rt60` measures RT60 back from a response: Schroeder's backward-integrated
  energy decay curve (Schroeder 1965), a straight line fitted from -5 to -25 dB (T20) x 3.

Everything is seeded (a ``numpy.random.Generator``), so a seed gives the same response.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfdenoise import SAMPLE_RATE

SPEED_OF_SOUND = 343.0  # m/s, air at 20 degrees C
SABINE = "sabine"
EYRING = "eyring"
ROOM_SIZE_M = ((3.0, 10.0), (3.0, 8.0), (2.5, 4.0))  # drawn length, width, height ranges
WALL_MARGIN_M = 0.5  # sources and microphone at least this far from every wall
DISTANCE_M = (0.5, 3.0)  # talker / noise source to microphone
MAX_ORDER = 12  # image order cap: complete image sum up to t_c (about 40-70 ms in these rooms)
TAIL_FIT_S = 0.01  # image energy window before t_c that sets the diffuse tail's level
MAX_ALPHA = 0.99  # a drawn RT60 needing more absorption than this redraws the room
_SABINE_K = 24 * np.log(10) / SPEED_OF_SOUND  # 0.161 s/m


@dataclass(frozen=True)
class Room:
    """A shoebox room, a source and a microphone (metres), and its wall absorption."""

    size: tuple[float, float, float]
    source: tuple[float, float, float]
    mic: tuple[float, float, float]
    rt60: float  # seconds, the decay the absorption and the tail were drawn for
    alpha: float  # absorption coefficient of every wall, in (0, 1)

    def with_source(self, source: tuple[float, float, float]) -> "Room":
        """The same room and microphone with another source (e.g. the noise's)."""
        return Room(self.size, tuple(source), self.mic, self.rt60, self.alpha)


def absorption(size, rt60: float, formula: str = SABINE) -> float:
    """Wall absorption coefficient that gives ``rt60`` seconds in a room of ``size`` metres
    by Sabine's (default) or Eyring's formula (may exceed 1: the RT60 is too short for the room)."""
    lx, ly, lz = size
    volume, surface = lx * ly * lz, 2 * (lx * ly + lx * lz + ly * lz)
    sabine = _SABINE_K * volume / (surface * rt60)
    if formula == SABINE:
        return float(sabine)
    if formula == EYRING:
        return float(1 - np.exp(-sabine)) if sabine < 50 else 1.0
    raise ValueError(f"formula must be {SABINE!r} or {EYRING!r}, not {formula!r}")


def _position(rng: np.random.Generator, size) -> np.ndarray:
    return np.array([rng.uniform(WALL_MARGIN_M, s - WALL_MARGIN_M) for s in size])


def _placed(rng: np.random.Generator, size, mic: np.ndarray) -> np.ndarray:
    """A source position WALL_MARGIN_M inside the walls, DISTANCE_M from ``mic`` when one of
    50 draws manages it (else the last draw)."""
    for _ in range(50):
        src = _position(rng, size)
        if DISTANCE_M[0] <= np.linalg.norm(src - mic) <= DISTANCE_M[1]:
            break
    return src


def draw_room(rng: np.random.Generator, rt60: tuple[float, float], formula: str = SABINE) -> Room:
    """A random room, microphone and source for an RT60 drawn uniformly from ``rt60`` (s).

    A room whose walls would need an absorption above MAX_ALPHA for that RT60 (a short RT60
    in a large room) is redrawn, up to 20 times; after that the absorption is capped (the
    decay is then longer than drawn: the tail keeps the drawn RT60)."""
    t60 = float(rng.uniform(*rt60))
    for _ in range(20):
        size = tuple(float(rng.uniform(lo, hi)) for lo, hi in ROOM_SIZE_M)
        alpha = absorption(size, t60, formula)
        if alpha <= MAX_ALPHA:
            break
    mic = _position(rng, size)
    src = _placed(rng, size, mic)
    return Room(size, tuple(float(v) for v in src), tuple(float(v) for v in mic), t60, min(alpha, MAX_ALPHA))


def _axis_images(p: np.ndarray, source: float, length: float) -> np.ndarray:
    """Image coordinates of indices ``p`` along one axis (module header)."""
    return np.where(p % 2 == 0, source + p * length, (p + 1) * length - source)


def image_sources(room: Room, max_order: int = MAX_ORDER) -> tuple[np.ndarray, np.ndarray, float]:
    """``(delays in seconds, amplitudes, t_c)`` of every image of order ``<= max_order``
    arriving before ``t_c``, the arrival of the first image of order ``max_order + 1``."""
    n = max_order + 1
    p = np.arange(-n, n + 1)
    px, py, pz = np.meshgrid(p, p, p, indexing="ij", sparse=True)
    order = np.abs(px) + np.abs(py) + np.abs(pz)
    coords = [_axis_images(q, s, length) - m for q, s, length, m in zip((px, py, pz), room.source, room.size, room.mic)]
    dist = np.sqrt(coords[0] ** 2 + coords[1] ** 2 + coords[2] ** 2)
    t_c = float(dist[order == n].min()) / SPEED_OF_SOUND
    keep = (order <= max_order) & (dist < t_c * SPEED_OF_SOUND)
    dist, order = dist[keep], order[keep]
    beta = np.sqrt(1.0 - room.alpha)
    return dist / SPEED_OF_SOUND, beta ** order / (4 * np.pi * np.maximum(dist, 1e-3)), t_c


def image_taps(delays: np.ndarray, amps: np.ndarray, length: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """``length`` samples (float64) with each image's amplitude added at the sample nearest to
    its delay (nearest-sample taps, module header); images arriving at or after ``length`` are left out."""
    h = np.zeros(length)
    taps = np.rint(delays * sample_rate).astype(int)
    inside = taps < length
    np.add.at(h, taps[inside], amps[inside])
    return h


def simulate(room: Room, rng: np.random.Generator, max_order: int = MAX_ORDER,
             sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The room's impulse response (float32), from time 0 (propagation delay included, so the
    direct path is the first non-zero tap) to the direct path's arrival + RT60."""
    delays, amps, t_c = image_sources(room, max_order)
    length = int(np.ceil((delays.min() + room.rt60) * sample_rate)) + 1
    h = image_taps(delays, amps, length, sample_rate)
    start = int(np.ceil(t_c * sample_rate))
    if start < length:
        fit = slice(max(int(np.rint(delays.min() * sample_rate)) + 1, start - int(TAIL_FIT_S * sample_rate)), start)
        t = np.arange(length) / sample_rate
        decay = 10 ** (-3 * (t - t_c) / room.rt60)  # amplitude: -60 dB in RT60
        sigma = np.sqrt(np.mean(h[fit] ** 2 / decay[fit] ** 2)) if fit.stop > fit.start else 0.0
        h[start:] = sigma * decay[start:] * rng.standard_normal(length - start)
    return h.astype(np.float32)


def random_rirs(rng: np.random.Generator, rt60: tuple[float, float], sources: int = 1,
                formula: str = SABINE) -> tuple[Room, list[np.ndarray]]:
    """A random room and ``sources`` impulse responses to one microphone in it (the first
    from the room's own source, the others from fresh positions)."""
    room = draw_room(rng, rt60, formula)
    rooms = [room] + [room.with_source(tuple(_placed(rng, room.size, np.array(room.mic)))) for _ in range(sources - 1)]
    return room, [simulate(r, rng) for r in rooms]


def direct_index(h: np.ndarray) -> int:
    """Sample of the direct path: the first non-zero tap."""
    return int(np.flatnonzero(h)[0])


def energy_decay_db(h: np.ndarray) -> np.ndarray:
    """Schroeder's energy decay curve in dB (0 at the start), from the direct path on."""
    e = np.cumsum((h[direct_index(h):].astype(np.float64) ** 2)[::-1])[::-1]
    return 10 * np.log10(np.maximum(e / e[0], 1e-30))


def estimate_rt60(h: np.ndarray, sample_rate: int = SAMPLE_RATE, span_db: tuple[float, float] = (-5.0, -25.0)) -> float:
    """RT60 in seconds measured from a response: a least-squares line through its energy
    decay curve between ``span_db`` (T20 by default), extrapolated to -60 dB."""
    edc = energy_decay_db(h)
    idx = np.flatnonzero((edc <= span_db[0]) & (edc >= span_db[1]))
    if len(idx) < 2:
        raise ValueError("the response does not decay through the fitted span")
    slope = np.polyfit(idx / sample_rate, edc[idx], 1)[0]  # dB per second
    return float(-60.0 / slope)

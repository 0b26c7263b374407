"""Turn a configuration into the flat arrays the kernel reads (the "problem").

The world is a small tree of coaxial cylinders (axis z):

* the detector stack: the crystal (always cylinder 0), then each housing layer, each one
  containing the previous;
* the source stack: the volume source's contents and its container wall, or a backing plate;
* the world cylinder around both, filled with air or vacuum; leaving it means escape.

Cylinder i is region i: "inside cylinder i but in none of its children". The kernel only ever
asks for the distance to its own cylinder's surface (exit to the parent) and to its direct
children's surfaces (entry), so a step costs at most three cylinder intersections.

Cylinders are parallel to z; one may sit off the axis (`cx_cm`: an off-axis volume source and its
container). A region with a hole that something else reaches into (a Marinelli beaker's re-entrant
well around the detector's end cap) is a child that sticks out of its parent: the well's air is a
child of the well wall and of the region around the beaker, and holds the detector stack. Such a
parent is marked open (`cyl_open`): there the kernel also measures the exit distance when a child
is hit, and on leaving a child it climbs the parents until it is inside one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from vital_desktop.montecarlo.config import SimulationConfig
from vital_desktop.montecarlo.materials import (
    GRID_POINTS,
    coherent_screening_length_angstrom,
    k_shell_table,
    linear_coefficients,
    resolve_material,
)

#: Air (or vacuum) reaches this far beyond the source and the detector; room scatter is not modelled.
WORLD_MARGIN_CM = 5.0
#: Most children one cylinder can have (the region around the stacks: detector, source, absorbers).
MAX_CHILDREN = 8
SOURCE_POINT, SOURCE_DISK, SOURCE_VOLUME = 0, 1, 2
#: source_params: x0, z0, radius, z_low, z_high, hole radius^2, hole z_low, hole z_high (a volume
#: source is sampled uniformly in its cylinder, rejecting points inside the hole cylinder).
N_SOURCE_PARAMS = 8


@dataclass(frozen=True)
class Cylinder:
    name: str
    radius_cm: float
    z_low_cm: float
    z_high_cm: float
    material: str
    density_g_cm3: float | None
    cx_cm: float = 0.0


@dataclass
class Problem:
    """Everything the kernel needs, as numpy arrays (picklable, shareable between threads)."""

    cylinders: list[Cylinder]
    cyl_r2: np.ndarray
    cyl_zlo: np.ndarray
    cyl_zhi: np.ndarray
    cyl_mat: np.ndarray
    cyl_parent: np.ndarray
    cyl_children: np.ndarray
    cyl_nchildren: np.ndarray
    cyl_cx: np.ndarray  # x of each cylinder's axis (0 on the detector axis)
    cyl_open: np.ndarray  # 1 where a child sticks out of this cylinder (a Marinelli well)
    mu: np.ndarray  # (n_materials, 5, GRID_POINTS)
    k_edge: np.ndarray  # (n_materials, 2)
    k_prob: np.ndarray  # (n_materials, 2, GRID_POINTS)
    k_alpha: np.ndarray
    k_beta: np.ndarray
    k_beta_share: np.ndarray
    coherent_b: np.ndarray  # (n_materials,) (a/2)^2 in Angstrom^2
    source_kind: int
    source_params: np.ndarray  # x0, z0, radius, z_low, z_high
    source_region: int
    cone_params: np.ndarray  # vr_on, p_out, outer radius, front z, sphere centre z, sphere radius
    energies_mev: np.ndarray
    probabilities: np.ndarray
    cutoff_mev: float
    k_on: bool
    spectrum_max_mev: float
    spectrum_bins: int
    material_names: list[str]

    def kernel_args(self) -> tuple:
        """The problem's arguments of a kernel call, in the kernel's order (between the per-mode
        inputs and the tallies; see `kernel.kernel_for`)."""
        return (
            self.cyl_r2, self.cyl_zlo, self.cyl_zhi, self.cyl_mat, self.cyl_parent, self.cyl_children,
            self.cyl_nchildren, self.cyl_cx, self.cyl_open,
            self.mu, self.k_edge, self.k_prob, self.k_alpha, self.k_beta, self.k_beta_share, self.coherent_b,
            self.source_kind, self.source_params, self.source_region, self.cone_params,
            self.cutoff_mev, self.k_on, self.spectrum_max_mev,
        )

    @cached_property
    def general_geometry(self) -> bool:
        """True when the kernel needs its general variant (an off-axis cylinder or an open parent)."""
        return bool(np.any(self.cyl_cx != 0.0) or np.any(self.cyl_open != 0))


def _stack_detector(config: SimulationConfig) -> list[Cylinder]:
    det = config.detector
    r, zlo, zhi = det.radius_cm, 0.0, det.height_cm
    out = [Cylinder("crystal", r, zlo, zhi, det.material, det.density_g_cm3)]
    for layer in det.housing:
        r, zlo, zhi = r + layer.side_cm, zlo - layer.front_cm, zhi + layer.back_cm
        out.append(Cylinder(layer.name or layer.material, r, zlo, zhi, layer.material, layer.density_g_cm3))
    return out


def build_problem(config: SimulationConfig) -> Problem:
    """Lay out the geometry and gather cross sections for one validated configuration."""
    det_stack = _stack_detector(config)
    z_front = det_stack[-1].z_low_cm
    outer = det_stack[-1]
    src = config.source
    z_plane = z_front - src.distance_cm
    src_stack: list[Cylinder] = []
    well: list[Cylinder] = []  # Marinelli: the well wall (if any), then the well's air
    params = np.zeros(N_SOURCE_PARAMS)
    medium = config.options.medium
    fill = "air" if medium == "air" else "vacuum"
    if src.kind == "point":
        kind = SOURCE_POINT
        params[:5] = (src.offset_cm, z_plane, 0.0, z_plane, z_plane)
    elif src.kind == "disk":
        kind = SOURCE_DISK
        params[:5] = (src.offset_cm, z_plane, src.radius_cm, z_plane, z_plane)
    elif src.kind == "volume":
        kind = SOURCE_VOLUME
        z_hi = z_plane - src.wall_cm
        z_lo = z_hi - src.height_cm
        cx = src.offset_cm
        params[:5] = (cx, z_hi, src.radius_cm, z_lo, z_hi)
        src_stack.append(Cylinder("source volume", src.radius_cm, z_lo, z_hi, src.material, src.density_g_cm3, cx))
        if src.wall_cm > 0:
            src_stack.append(Cylinder("container", src.radius_cm + src.wall_cm, z_lo - src.wall_cm, z_plane,
                                      src.wall_material, None, cx))
    else:  # Marinelli beaker: contents with a re-entrant well around the end cap
        kind = SOURCE_VOLUME
        t = src.wall_cm
        z_well = z_plane  # the well's inner closed end
        z_rim = z_well + src.well_depth_cm
        z_hi = z_rim - t
        z_lo = z_hi - src.height_cm
        src_stack.append(Cylinder("beaker contents", src.radius_cm, z_lo, z_hi, src.material, src.density_g_cm3))
        if t > 0:
            src_stack.append(Cylinder("beaker wall", src.radius_cm + t, z_lo - t, z_rim, src.wall_material, None))
            well.append(Cylinder("beaker well wall", src.well_radius_cm + t, z_well - t, z_rim, src.wall_material,
                                 None))
        well.append(Cylinder("beaker well", src.well_radius_cm, z_well, max(z_rim, outer.z_high_cm), fill, None))
        hole_r = src.well_radius_cm + t
        params[:] = (0.0, z_hi, src.radius_cm, z_lo, z_hi, hole_r * hole_r, z_well - t, z_rim)
    if src.backing is not None:
        b = src.backing
        src_stack.append(Cylinder("backing", b.radius_cm, z_plane - b.thickness_cm, z_plane, b.material, b.density_g_cm3))

    hole: list[Cylinder] = []
    det = config.detector
    if det.core_hole_radius_cm > 0.0:
        hole.append(Cylinder("core hole", det.core_hole_radius_cm, det.height_cm - det.core_hole_depth_cm,
                             det.height_cm, "vacuum", None))
    absorbers = [Cylinder(a.name or f"absorber {i + 1}", a.radius_cm, z_front - a.gap_cm - a.thickness_cm,
                          z_front - a.gap_cm, a.material, a.density_g_cm3) for i, a in enumerate(config.absorbers)]
    inner = det_stack + hole + src_stack + well + absorbers
    r_max = max(max(abs(c.cx_cm) + c.radius_cm for c in inner), abs(src.offset_cm))
    z_min = min(min(c.z_low_cm for c in inner), z_plane)
    z_max = max(max(c.z_high_cm for c in inner), z_plane)
    shield: list[Cylinder] = []
    if config.shield is not None:
        sh = config.shield
        r_in = sh.inner_radius_cm if sh.inner_radius_cm is not None else r_max + sh.clearance_cm
        cavity = Cylinder("shield cavity", r_in, z_min - sh.clearance_cm, z_max + sh.clearance_cm, fill, None)
        wall = Cylinder("shield", r_in + sh.wall_cm, cavity.z_low_cm - sh.wall_cm, cavity.z_high_cm + sh.wall_cm,
                        sh.material, sh.density_g_cm3)
        shield = [cavity, wall]
        r_max, z_min, z_max = wall.radius_cm, wall.z_low_cm, wall.z_high_cm
    world = Cylinder("world", r_max + WORLD_MARGIN_CM, z_min - WORLD_MARGIN_CM, z_max + WORLD_MARGIN_CM, fill, None)
    all_cyl = inner + shield
    cylinders = all_cyl + [world]
    n = len(cylinders)
    world_index = n - 1
    container = len(inner) if shield else world_index  # the region the stacks sit in
    parent = np.full(n, -1, dtype=np.int64)
    children = np.full((n, MAX_CHILDREN), -1, dtype=np.int64)
    nchildren = np.zeros(n, dtype=np.int64)
    is_open = np.zeros(n, dtype=np.int64)

    def add_child(child: int, into: int) -> None:
        children[into, nchildren[into]] = child
        nchildren[into] += 1

    def adopt(child: int, into: int) -> None:
        parent[child] = into
        add_child(child, into)

    def link(stack_start: int, stack_len: int, into: int) -> None:
        for i in range(stack_start + 1, stack_start + stack_len):
            adopt(i - 1, i)
        adopt(stack_start + stack_len - 1, into)

    first_source = len(det_stack) + len(hole)
    first_well = first_source + len(src_stack)
    if well:
        # the well's air holds the detector and sticks out of the beaker through the rim plane, so
        # it is also a child of the region around the beaker (listed first: it wins a tie there)
        well_air = first_well + len(well) - 1
        add_child(well_air, container)
        link(0, len(det_stack), well_air)
        contents = first_source
        if len(well) == 2:  # a wall: contents < beaker wall; well air < well wall < contents and beaker wall
            well_wall = first_well
            adopt(well_air, well_wall)
            adopt(well_wall, contents)
            add_child(well_wall, first_source + 1)
            is_open[well_wall] = 1
        else:
            adopt(well_air, contents)
        is_open[contents] = 1
    else:
        link(0, len(det_stack), container)
    if hole:
        # the core hole is a child of the crystal (cylinder 0); it shares the crystal's back face
        adopt(len(det_stack), 0)
    if src_stack:
        link(first_source, len(src_stack), container)
    for i in range(len(absorbers)):
        link(first_well + len(well) + i, 1, container)
    if shield:
        adopt(len(inner) + 1, world_index)
        adopt(len(inner), len(inner) + 1)
    source_region = first_source if kind == SOURCE_VOLUME else container

    # materials: unique (name, density); vacuum is -1
    coherent = config.options.coherent
    keys: list[tuple[str, float]] = []
    mat_index = np.full(n, -1, dtype=np.int64)
    for i, c in enumerate(cylinders):
        material = resolve_material(c.material)
        if material.name == "vacuum":
            continue
        density = c.density_g_cm3 if c.density_g_cm3 is not None else material.density_g_cm3
        key = (material.name, float(density))
        if key not in keys:
            keys.append(key)
        mat_index[i] = keys.index(key)
    n_mat = max(len(keys), 1)
    mu = np.zeros((n_mat, 5, GRID_POINTS))
    k_edge = np.full((n_mat, 2), 1.0e9)
    k_prob = np.zeros((n_mat, 2, GRID_POINTS))
    k_alpha = np.zeros((n_mat, 2))
    k_beta = np.zeros((n_mat, 2))
    k_share = np.zeros((n_mat, 2))
    coherent_b = np.zeros(n_mat)
    for j, (name, density) in enumerate(keys):
        material = resolve_material(name)
        mu[j] = linear_coefficients(material, density, coherent=coherent)
        table = k_shell_table(material)
        k_edge[j], k_prob[j], k_alpha[j], k_beta[j], k_share[j] = (
            table.edges_mev, table.emission_probability, table.alpha_mev, table.beta_mev, table.beta_share)
        a = coherent_screening_length_angstrom(material)
        coherent_b[j] = (a / 2.0) ** 2

    # variance reduction: decide whether anything outside the cone can send photons back
    opts = config.options
    if opts.outside_fraction is not None:
        p_out = float(opts.outside_fraction)
    else:
        scatterers = bool(src_stack) or bool(absorbers) or bool(shield) or medium == "air"
        p_out = 0.1 if scatterers else 0.0
    half = (outer.z_high_cm - outer.z_low_cm) / 2.0
    cone = np.array([
        1.0 if opts.variance_reduction else 0.0,
        p_out,
        outer.radius_cm,
        outer.z_low_cm,
        outer.z_low_cm + half,
        math.sqrt(outer.radius_cm**2 + half**2),
    ])
    energies = np.array([line.energy_kev / 1000.0 for line in config.lines])
    spectrum_max = (opts.spectrum_max_kev / 1000.0) if opts.spectrum_max_kev else 1.05 * float(energies.max())
    return Problem(
        cylinders=cylinders,
        cyl_r2=np.array([c.radius_cm**2 for c in cylinders]),
        cyl_zlo=np.array([c.z_low_cm for c in cylinders]),
        cyl_zhi=np.array([c.z_high_cm for c in cylinders]),
        cyl_mat=mat_index,
        cyl_parent=parent,
        cyl_children=children,
        cyl_nchildren=nchildren,
        cyl_cx=np.array([c.cx_cm for c in cylinders]),
        cyl_open=is_open,
        mu=mu,
        k_edge=k_edge,
        k_prob=k_prob,
        k_alpha=k_alpha,
        k_beta=k_beta,
        k_beta_share=k_share,
        coherent_b=coherent_b,
        source_kind=kind,
        source_params=params,
        source_region=source_region,
        cone_params=cone,
        energies_mev=energies,
        probabilities=np.array([line.probability for line in config.lines]),
        cutoff_mev=opts.cutoff_kev / 1000.0,
        k_on=bool(opts.k_xray_escape),
        spectrum_max_mev=spectrum_max,
        spectrum_bins=int(opts.spectrum_bins),
        material_names=[k[0] for k in keys],
    )


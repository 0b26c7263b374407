/* A bare cylindrical crystal (axis z, 0 <= z <= H, radius R) for goupil's external-geometry
 * interface, used only by benchmarks/bench_montecarlo.py to run an established offline
 * photon-transport code on the same case as the vital engine. Sector 0 is the crystal; sector 1
 * (== the number of sectors) means "outside", where goupil stops the photon.
 * Dimensions and composition come from compile-time macros (-DRADIUS_CM=... -DHEIGHT_CM=...,
 * -DDENSITY=..., the two elements -DZ1/-DW1/-DZ2/-DW2 as atom fractions, -DMATERIAL_NAME). */
#include <math.h>
#include <stdlib.h>
#include "goupil.h"

#ifndef RADIUS_CM
#define RADIUS_CM 3.81
#endif
#ifndef HEIGHT_CM
#define HEIGHT_CM 7.62
#endif
#ifndef DENSITY
#define DENSITY 3.667
#endif
#ifndef Z1
#define Z1 11
#define W1 0.5
#define Z2 53
#define W2 0.5
#endif
#ifndef MATERIAL_NAME
#define MATERIAL_NAME "NaI"
#endif

static size_t material_len(const struct goupil_material_definition *self) { (void)self; return 2; }

static const struct goupil_weighted_element material_element(const struct goupil_material_definition *self,
                                                             size_t index) {
    (void)self;
    struct goupil_weighted_element e = {Z1, W1};
    if (index == 1) { e.Z = Z2; e.weight = W2; }
    return e;
}

static const char *material_name(const struct goupil_material_definition *self) { (void)self; return MATERIAL_NAME; }

static struct goupil_material_definition MATERIAL = {material_len, material_element, material_name};

static void definition_destroy(struct goupil_geometry_definition *self) { (void)self; }

static const struct goupil_material_definition *definition_material(const struct goupil_geometry_definition *self,
                                                                     size_t index) {
    (void)self; (void)index;
    return &MATERIAL;
}

static const struct goupil_geometry_sector definition_sector(const struct goupil_geometry_definition *self,
                                                             size_t index) {
    (void)self; (void)index;
    struct goupil_geometry_sector s = {0, DENSITY, "crystal"};
    return s;
}

static size_t definition_materials_len(const struct goupil_geometry_definition *self) { (void)self; return 1; }
static size_t definition_sectors_len(const struct goupil_geometry_definition *self) { (void)self; return 1; }

static struct goupil_geometry_definition DEFINITION = {
    definition_destroy, definition_material, definition_sector, definition_materials_len, definition_sectors_len};

struct tracer {
    struct goupil_geometry_tracer base;
    struct goupil_float3 r, u;
    size_t sector;
    double boundary; /* distance to the surface found by the last trace */
};

static size_t locate(struct goupil_float3 r) {
    return (r.z >= 0.0 && r.z <= HEIGHT_CM && r.x * r.x + r.y * r.y <= RADIUS_CM * RADIUS_CM) ? 0 : 1;
}

static void tracer_destroy(struct goupil_geometry_tracer *self) { free(self); }

static struct goupil_float3 tracer_position(const struct goupil_geometry_tracer *self) {
    return ((const struct tracer *)self)->r;
}

static void tracer_reset(struct goupil_geometry_tracer *self, struct goupil_float3 r, struct goupil_float3 u) {
    struct tracer *t = (struct tracer *)self;
    t->r = r;
    t->u = u;
    t->sector = locate(r);
    t->boundary = 0.0;
}

static size_t tracer_sector(const struct goupil_geometry_tracer *self) { return ((const struct tracer *)self)->sector; }

/* distance to leave the cylinder from inside along u (the only case goupil asks for here) */
static goupil_float_t tracer_trace(struct goupil_geometry_tracer *self, goupil_float_t physical_length) {
    (void)physical_length;
    struct tracer *t = (struct tracer *)self;
    if (t->sector != 0) return 1.0e30;
    double tz = 1.0e30;
    if (t->u.z > 0.0) tz = (HEIGHT_CM - t->r.z) / t->u.z;
    else if (t->u.z < 0.0) tz = -t->r.z / t->u.z;
    double a = t->u.x * t->u.x + t->u.y * t->u.y;
    double tr = 1.0e30;
    if (a > 0.0) {
        double b = t->r.x * t->u.x + t->r.y * t->u.y;
        double c = t->r.x * t->r.x + t->r.y * t->r.y - RADIUS_CM * RADIUS_CM;
        double disc = b * b - a * c;
        tr = (-b + sqrt(disc > 0.0 ? disc : 0.0)) / a;
    }
    double d = tz < tr ? tz : tr;
    t->boundary = d > 0.0 ? d : 0.0;
    return t->boundary;
}

static void tracer_update(struct goupil_geometry_tracer *self, goupil_float_t length, struct goupil_float3 u) {
    struct tracer *t = (struct tracer *)self;
    t->r.x += length * t->u.x;
    t->r.y += length * t->u.y;
    t->r.z += length * t->u.z;
    /* the cylinder is convex: a step that reaches the surface found by trace leaves it */
    t->sector = (t->sector == 0 && length >= t->boundary) ? 1 : locate(t->r);
    t->u = u;
}

static struct goupil_geometry_definition *new_definition(void) { return &DEFINITION; }

static struct goupil_geometry_tracer *new_tracer(struct goupil_geometry_definition *definition) {
    struct tracer *t = calloc(1, sizeof(struct tracer));
    t->base.definition = definition;
    t->base.destroy = tracer_destroy;
    t->base.position = tracer_position;
    t->base.reset = tracer_reset;
    t->base.sector = tracer_sector;
    t->base.trace = tracer_trace;
    t->base.update = tracer_update;
    t->sector = 1;
    return &t->base;
}

struct goupil_interface goupil_initialise(void) {
    struct goupil_interface interface = {new_definition, new_tracer};
    return interface;
}

#version 450
// Orbit: every shape is generated from gl_VertexIndex / gl_InstanceIndex.
// One draw of 6 vertices x (obstacles + 2) instances:
//   instance 0                 -> full-frame background quad
//   instances 1..=obstacles    -> orbiting, spinning quads and triangles
//   instance obstacles + 1     -> the player square (drawn last, on top)
// Positions are worked out in normalised frame coordinates (0..1, y down)
// and mapped to clip space at the end.

layout(push_constant) uniform Scene {
    vec2 player;       // player centre, normalised 0..1
    float player_size; // player side, as a fraction of the frame height
    float aspect;      // frame width / height
    float time;        // seconds
    uint obstacles;    // number of obstacles
} scene;

layout(location = 0) out vec2 v_uv;
layout(location = 1) flat out vec4 v_color;
layout(location = 2) flat out uint v_kind;

const vec2 QUAD[6] = vec2[](
    vec2(-1.0, -1.0), vec2(1.0, -1.0), vec2(1.0, 1.0),
    vec2(-1.0, -1.0), vec2(1.0, 1.0), vec2(-1.0, 1.0)
);

// Vertices 3..5 collapse to one point: a zero-area triangle draws nothing.
const vec2 TRI[6] = vec2[](
    vec2(0.0, -1.2), vec2(1.04, 0.6), vec2(-1.04, 0.6),
    vec2(0.0, 0.0), vec2(0.0, 0.0), vec2(0.0, 0.0)
);

// Cyan, magenta and a pale blue-white: all keep blue >= 100/255.
const vec3 PALETTE[3] = vec3[](
    vec3(0.0, 0.85, 1.0),
    vec3(1.0, 0.1, 0.8),
    vec3(0.75, 0.85, 1.0)
);

const float TAU = 6.28318530718;

void main() {
    uint inst = uint(gl_InstanceIndex);
    uint vert = uint(gl_VertexIndex);
    vec2 pos;

    if (inst == 0u) {
        pos = QUAD[vert] * 0.5 + 0.5;
        v_color = vec4(0.0);
        v_kind = 0u;
    } else if (inst <= scene.obstacles) {
        uint i = inst - 1u;
        float fi = float(i);
        float angle = scene.time * 0.7 + fi * TAU / float(scene.obstacles);
        float radius = 0.30 + 0.06 * sin(scene.time * 1.3 + fi);
        // Work in units of the frame's shorter side around the centre, so
        // shapes stay square and the orbit fits portrait frames too.
        vec2 centre = vec2(cos(angle), sin(angle)) * radius;
        float spin = scene.time * (1.5 + 0.25 * fi) + fi;
        mat2 rot = mat2(cos(spin), sin(spin), -sin(spin), cos(spin));
        vec2 local = (i % 2u == 0u) ? QUAD[vert] : TRI[vert];
        vec2 p = centre + rot * local * 0.045;
        float short_side = min(1.0, scene.aspect);
        pos = 0.5 + p * vec2(short_side / scene.aspect, short_side);
        v_color = vec4(PALETTE[i % 3u], 1.0);
        v_kind = 1u;
    } else {
        vec2 half_size = vec2(scene.player_size * 0.5 / scene.aspect, scene.player_size * 0.5);
        pos = scene.player + QUAD[vert] * half_size;
        // The player colour, RGB (255, 210, 0).
        v_color = vec4(1.0, 210.0 / 255.0, 0.0, 1.0);
        v_kind = 2u;
    }

    v_uv = pos;
    gl_Position = vec4(pos * 2.0 - 1.0, 0.0, 1.0);
}

#version 450
// Orbit: the background is a dark blue/purple gradient that drifts with
// time; obstacles and the player are flat colours chosen by the vertex shader.
// Red stays below 0.3 in the background, so nothing but the player is yellow.

layout(push_constant) uniform Scene {
    vec2 player;
    float player_size;
    float aspect;
    float time;
    uint obstacles;
} scene;

layout(location = 0) in vec2 v_uv;
layout(location = 1) flat in vec4 v_color;
layout(location = 2) flat in uint v_kind;

layout(location = 0) out vec4 o_color;

void main() {
    if (v_kind != 0u) {
        o_color = v_color;
        return;
    }
    float t = scene.time;
    vec2 uv = v_uv;
    float wave = 0.5 + 0.5 * sin(t * 0.8 + uv.x * 3.0 + uv.y * 2.0);
    float band = 0.5 + 0.5 * sin(t * 1.7 - length(uv - 0.5) * 12.0);
    vec3 deep = vec3(0.04, 0.02, 0.22);
    vec3 violet = vec3(0.24, 0.06, 0.46);
    vec3 color = mix(deep, violet, wave) + vec3(0.0, 0.05, 0.12) * band;
    o_color = vec4(color, 1.0);
}

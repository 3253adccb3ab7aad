// Entry of the cpu backend's WebAssembly SIMD (128-bit) kernels, written in AssemblyScript and compiled by
// build-wasm.ts into dist/core/backend/cpu/kernels.wasm (the extension is .as so tsc leaves these files alone;
// build-wasm hands them to asc as .ts). One file per kernel family; what this file re-exports is the wasm module's
// export list, and build-wasm derives the typed `Kernels` interface (kernels/exports.ts) from the exported signatures.
// A new family is one file here plus one `export * from` line below (see docs/cpu-backend.md, "Adding a kernel").
//
// Every pointer is a byte address in one shared WebAssembly.Memory that the main thread and all pool workers import,
// so these functions keep no state: no globals, no allocation, no static data.

export * from './gemm';
export * from './depthwise';
export * from './direct';
export * from './elementwise';
export * from './norm';
export * from './pool';
export * from './sparse';

// Building a Backend from kernels, in one place, so that which backend runs each kernel is explicit and typed.
// - hostBackend: a host implementation (HostKernels: typed arrays in and out, the reference and cpu kernels) as a
//   Backend. A device array handed to it is read back first (hostData: the owner counts the readback), so a tensor
//   made on another backend still works, and pays for its transfer where it happens.
// - composeBackend: a backend that serves some kernels itself and names, per remaining kernel, the backend that runs
//   it. The delegate table's type is exactly the kernels not served, so a kernel added to KernelSet, or one a backend
//   stops serving, is a compile error until someone says who runs it; nothing falls through silently.
// Both record the answer in Backend.kernels (kernel -> backend name), which tests list per backend.

import { hostData, type DeviceArray, type TensorData } from '../dtype.js';
import { PtslabError } from '../errors.js';
import type { Backend, HostKernels, KernelName, Kernels } from './types.js';

/** Every kernel name, once (the Record makes the list complete: a missing or extra name does not compile). */
const NAMES: Record<KernelName, true> = {
  contiguous: true, assign: true, unary: true, binary: true, where: true, clamp: true, reduce: true, matmul: true,
  conv2d: true, conv2dAct: true, sparseConv2d: true, sparseLinear: true, conv2dBackwardInput: true, conv2dBackwardWeight: true,
  maxPool2d: true, maxPool2dBackward: true, maxPool2dInference: true, avgPool2d: true, avgPool2dBackward: true, adaptiveAvgPool2d: true,
  adaptiveAvgPool2dBackward: true, batchNormStats: true, batchNormForward: true, batchNormBackward: true,
};
export const KERNEL_NAMES = Object.keys(NAMES) as readonly KernelName[];

type AnyFn = (...args: unknown[]) => unknown;

const isDeviceArray = (a: unknown): a is DeviceArray =>
  typeof a === 'object' && a !== null && typeof (a as DeviceArray).read === 'function' && typeof (a as DeviceArray).device === 'string';

/** A view (or other argument object) over a device array. */
const isDeviceView = (a: unknown): a is { data: DeviceArray } =>
  typeof a === 'object' && a !== null && !ArrayBuffer.isView(a) && isDeviceArray((a as { data?: unknown }).data);

/** A kernel argument with every device array in it read back: a view over one, the array itself. */
const toHostArg = (a: unknown): unknown =>
  isDeviceArray(a) ? a.read() : isDeviceView(a) ? { ...a, data: hostData(a.data as TensorData) } : a;

const needsHost = (args: readonly unknown[]) => args.some((a) => isDeviceArray(a) || isDeviceView(a));

/** Host kernels as a Backend of that name: device arrays in the arguments are read back before the kernel runs. */
export function hostBackend(
  name: string,
  k: HostKernels,
  extra: { unavailableReason?: () => string | null } = {},
): Backend {
  const out: Record<string, unknown> = { name, ...extra };
  const kernels: Record<string, string | null> = {};
  for (const n of KERNEL_NAMES) {
    const f = (k as unknown as Record<string, AnyFn | undefined>)[n];
    kernels[n] = f ? name : null;
    if (!f) continue;
    out[n] =
      n === 'assign'
        ? (dst: { data: unknown }, src: unknown) => {
            // a write into a readback would be lost: a device array is written by its own backend's assign
            if (isDeviceView(dst)) {
              throw new PtslabError(`${name} backend: cannot assign into a device array of '${dst.data.device}'; that backend's assign must write it (run the op with it selected, or move the tensor with moveTo first)`);
            }
            return f.call(k, dst, toHostArg(src));
          }
        : (...args: unknown[]) => f.apply(k, needsHost(args) ? args.map(toHostArg) : args);
  }
  out.kernels = Object.freeze(kernels);
  return out as unknown as Backend;
}

export interface ComposeSpec<S extends KernelName> {
  readonly name: string;
  /** The kernels this backend runs itself. */
  readonly serve: Pick<Kernels, S>;
  /** For every other kernel, the backend that runs it (null: none has it, for the optional sparse kernels). */
  readonly delegate: { readonly [K in Exclude<KernelName, S>]: Backend | null };
  readonly unavailableReason?: () => string | null;
}

/** A backend that serves spec.serve and hands every other kernel to the backend spec.delegate names for it. */
export function composeBackend<S extends KernelName, X extends object = object>(spec: ComposeSpec<S>, extra?: X): Backend & X {
  const out: Record<string, unknown> = {};
  const kernels: Record<string, string | null> = {};
  for (const [n, f] of Object.entries(spec.serve)) {
    out[n] = f;
    kernels[n] = spec.name;
  }
  for (const [n, b] of Object.entries(spec.delegate) as [KernelName, Backend | null][]) {
    const f = b ? (b as unknown as Record<string, AnyFn | undefined>)[n] : undefined;
    if (f) out[n] = (...args: unknown[]) => f.apply(b, args);
    kernels[n] = f ? b!.kernels[n] : null;
  }
  // extra may hold getters (mode, stats): copy descriptors, not values
  const result = Object.defineProperties(out, Object.getOwnPropertyDescriptors(extra ?? {}));
  Object.assign(result, { name: spec.name, kernels: Object.freeze(kernels) });
  if (spec.unavailableReason) result.unavailableReason = spec.unavailableReason;
  return result as unknown as Backend & X;
}

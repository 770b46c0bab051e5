// The ES-module view of the installed package's types (compiled under module "nodenext" by
// test/install/run.sh): named imports and the default import resolve through the package's
// "exports" map to the same declarations that `require` gets.
import bptt, { RNN, Tensor } from 'bptt';

/** True when A and B are the same type (not merely assignable). */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function assertType<T extends true>(): T | void {}

assertType<Equal<typeof bptt.RNN, typeof RNN>>();
const rnn = new bptt.RNN({ inputSize: 3, hiddenSize: 4, outputSize: 3 });
const out = rnn.forward(Tensor.from(new Int32Array(2), [1, 2]));
assertType<Equal<typeof out.hT, Tensor>>();
// @ts-expect-error: the package has no export of that name
import('bptt').then((m) => m.notAnExport);

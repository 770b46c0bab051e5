// Module resolve hook for loading TF.js's gradient definitions (see loadTfjs in peers-tfjs.js).
// tfjs-core publishes them only as ES modules whose relative imports omit the extension ('./ops/add')
// or name a directory ('./gradients'), which bundlers accept and Node does not. This retries such a
// specifier with '.js', then '/index.js'; everything else resolves as usual.
export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (err) {
    if (!/^\.\.?\//.test(specifier)) throw err;
    try {
      return await next(`${specifier}.js`, context);
    } catch {
      return next(`${specifier}/index.js`, context);
    }
  }
}

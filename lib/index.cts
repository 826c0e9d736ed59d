// CommonJS entry: Node 20.19+ can require() the ES module build, so CommonJS and ESM callers
// share one copy of the package (and `instanceof LogtoError` holds across both).
import passportLogto = require('./index.js');
export = passportLogto;

// CommonJS entry of passport-logto/express: the root's, under the host's name.
import root = require('../index.cjs');

export = root;

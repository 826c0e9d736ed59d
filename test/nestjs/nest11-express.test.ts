/** NestJS 11 on the Express platform, with @nestjs/passport 11. */
import { loadNestApp } from './load-nest-app.js';
import { nestFlow } from './nest-flows.js';

nestFlow({ load: () => loadNestApp() });

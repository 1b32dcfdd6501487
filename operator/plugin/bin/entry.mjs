// Registers the TypeScript loader, then runs the plugin (operator/plugin/main.ts). Imports resolve from this file,
// so kubectl-arena works from any working directory.
import { register } from 'tsx/esm/api';

register();
await import('../main.ts');

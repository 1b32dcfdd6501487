// The AgileRL trainer's pytest files of the llm shard (pytest-suite.ts), a pytest process of their own.
import { pytestSuite } from './pytest-suite.ts';

pytestSuite('llm');

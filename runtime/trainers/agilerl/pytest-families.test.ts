// The AgileRL trainer's pytest files of the families shard (pytest-suite.ts), a pytest process of their own.
import { pytestSuite } from './pytest-suite.ts';

pytestSuite('families');

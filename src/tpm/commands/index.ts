// The command table: every implemented command by its code.

import type { CommandDef } from '../command.js';
import { capabilityCommands } from './capability.js';
import { contextCommands } from './context.js';
import { hierarchyCommands } from './hierarchy.js';
import { nvCommands } from './nv.js';
import { objectCommands } from './object.js';
import { pcrCommands } from './pcr.js';
import { sequenceCommands } from './sequence.js';
import { sessionCommands } from './session.js';
import { signCommands } from './sign.js';
import { startupCommands } from './startup.js';

const list: CommandDef[] = [];
list.push(
  ...startupCommands,
  ...capabilityCommands(() => list),
  ...pcrCommands,
  ...sequenceCommands,
  ...objectCommands,
  ...contextCommands,
  ...sessionCommands,
  ...signCommands,
  ...nvCommands,
  ...hierarchyCommands,
);
list.sort((a, b) => a.cc - b.cc);

export const COMMANDS: ReadonlyMap<number, CommandDef> = new Map(list.map((d) => [d.cc, d]));

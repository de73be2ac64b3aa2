/**
 * Where in a YAML file a validation problem is, and how to say it: shared by the policy files and the people file, so
 * both report file:line and the same plain words.
 */
import { isMap, isScalar, type Document, type Node as YamlNode } from 'yaml';
import type { z } from 'zod';

export function describeIssue(issue: z.core.$ZodIssue, present: boolean, keysDoc = 'policies/README.md'): string {
  const where = issue.path.length > 0 ? issue.path.join('.') : 'the file';
  switch (issue.code) {
    case 'unrecognized_keys':
      return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((key) => `"${key}"`).join(', ')} in ${where}; see ${keysDoc} for the keys allowed.`;
    case 'invalid_type':
      if (!present) return `${where} is required.`;
      return `${where} must be ${issue.expected === 'record' || issue.expected === 'object' ? 'a mapping' : issue.expected}.`;
    case 'invalid_value':
      return `${where} must be one of ${issue.values.map((value) => JSON.stringify(value)).join(', ')}.`;
    default:
      return `${where} ${issue.message}.`;
  }
}

export function lineOfPath(doc: Document, issue: z.core.$ZodIssue, lineOf: (offset: number | undefined) => number | null): number | null {
  const path = issue.path.map((part) => (typeof part === 'symbol' ? String(part) : part));
  if (issue.code === 'unrecognized_keys') {
    const container = nodeAt(doc, path);
    const first = issue.keys[0];
    if (container && isMap(container)) {
      const pair = container.items.find((item) => isScalar(item.key) && item.key.value === first);
      if (pair && isScalar(pair.key)) return lineOf(pair.key.range?.[0]);
    }
  }
  for (let depth = path.length; depth >= 0; depth -= 1) {
    const node = nodeAt(doc, path.slice(0, depth));
    if (node?.range) return lineOf(node.range[0]);
  }
  return 1;
}

export function nodeAt(doc: Document, path: readonly (string | number)[]): YamlNode | null {
  if (path.length === 0) return (doc.contents as YamlNode | null) ?? null;
  const node = doc.getIn(path, true);
  return node && typeof node === 'object' && 'range' in node ? (node as YamlNode) : null;
}

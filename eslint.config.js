// ESLint flat config: typescript-eslint's type-aware recommended rules for the TypeScript, ESLint's recommended
// rules for the .mjs scripts. Formatting is prettier's job (`npm run lint` runs both), so no style rules here.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

// The code marks deliberately unused names with a leading underscore (`_now`, `[_h, _c, ...rest]`).
const unusedVars = ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', ignoreRestSiblings: true }];

export default tseslint.config(
  { ignores: ['dist/', 'coverage/', 'reports/', 'bench/results/', 'bench/.snapshot-*/', 'test/.results/', 'test/tmp-*/'] },
  js.configs.recommended,
  {
    languageOptions: { globals: globals.node },
    rules: {
      'no-unused-vars': unusedVars,
      // Scrubbing control characters out of API answers, and the hostile-input corpus, match them on purpose.
      'no-control-regex': 'off',
    },
  },
  {
    files: ['**/*.ts', '**/*.mts'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      'no-unused-vars': 'off',
      '@typescript-eslint/no-unused-vars': unusedVars,
    },
  },
  {
    // Tests read JSON answers and poke at them field by field; typing every body would bury the assertions.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
);

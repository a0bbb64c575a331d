// wgsl_reflect's package entry points Node at a CommonJS build that Node cannot load as ESM; wgseg imports its ES
// module file directly (the same file bundlers and Deno use), which has the package's own types.
declare module 'wgsl_reflect/wgsl_reflect.module.js' {
  export * from 'wgsl_reflect';
}

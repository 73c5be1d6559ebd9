//! Validation of a container's resource requests, limits and GPU fields.

use serde_json::Value;

use super::errors::ArmError;

/// Maximum of a standard (non-GPU) Linux container group: 4 vCPU and 16 GB.
const MAX_CPU: f64 = 4.0;
const MAX_MEMORY_GB: f64 = 16.0;
/// Maximum with GPUs: 4 V100 GPUs come with 24 vCPU; the memory cap is an estimate.
const MAX_GPU_CPU: f64 = 24.0;
const MAX_GPU_MEMORY_GB: f64 = 112.0;
const GPU_COUNTS: [u64; 3] = [1, 2, 4];
const GPU_SKUS: [&str; 3] = ["K80", "P100", "V100"];

/// Checks `resources.requests` (required cpu and memoryInGB in range), the optional
/// `limits` (not below the requests) and GPU fields of one container.
pub fn check_resources(
    group: &str,
    container: &str,
    resources: Option<&Value>,
    errors: &mut Vec<ArmError>,
) {
    let requests = resources.and_then(|r| r.get("requests"));
    let cpu = requests.and_then(|r| r.get("cpu")).and_then(Value::as_f64);
    let memory = requests
        .and_then(|r| r.get("memoryInGB"))
        .and_then(Value::as_f64);
    let (Some(cpu), Some(memory)) = (cpu, memory) else {
        errors.push(ArmError::bad_request(
            "ResourceRequestsNotSpecified",
            format!("The resource requests are not specified in container '{container}' of container group '{group}'. Both memory and CPU requests are required."),
        ));
        return;
    };
    let gpu = requests.and_then(|r| r.get("gpu"));
    if let Some(gpu) = gpu {
        check_gpu(group, container, gpu, errors);
    }
    let (max_cpu, max_memory) = if gpu.is_some() {
        (MAX_GPU_CPU, MAX_GPU_MEMORY_GB)
    } else {
        (MAX_CPU, MAX_MEMORY_GB)
    };
    if !(cpu > 0.0 && cpu <= max_cpu) {
        errors.push(out_of_range(group, container, "Cpu", cpu, max_cpu));
    }
    if !(memory > 0.0 && memory <= max_memory) {
        errors.push(out_of_range(
            group,
            container,
            "MemoryInGB",
            memory,
            max_memory,
        ));
    }
    let limits = resources.and_then(|r| r.get("limits"));
    check_limit(
        group,
        container,
        "Cpu",
        cpu,
        limits.and_then(|l| l.get("cpu")),
        errors,
    );
    let memory_limit = limits.and_then(|l| l.get("memoryInGB"));
    check_limit(group, container, "MemoryInGB", memory, memory_limit, errors);
    if let Some(gpu) = limits.and_then(|l| l.get("gpu")) {
        check_gpu(group, container, gpu, errors);
    }
}

fn out_of_range(group: &str, container: &str, resource: &str, value: f64, max: f64) -> ArmError {
    ArmError::bad_request(
        "InvalidResourceRequests",
        format!(
            "The '{resource}' request {value} in container '{container}' of container group '{group}' is invalid. It must be greater than 0 and at most {max}."
        ),
    )
}

fn check_limit(
    group: &str,
    container: &str,
    resource: &str,
    request: f64,
    limit: Option<&Value>,
    errors: &mut Vec<ArmError>,
) {
    let Some(limit) = limit.and_then(Value::as_f64) else {
        return;
    };
    if limit < request {
        errors.push(ArmError::bad_request(
            "ResourceLimitsLessThanRequests",
            format!("The resource requirement in container '{container}' of container group '{group}' is invalid. The '{resource}' limit value {limit} must be greater than or equal to the request value {request}."),
        ));
    }
}

fn check_gpu(group: &str, container: &str, gpu: &Value, errors: &mut Vec<ArmError>) {
    let count = gpu.get("count").and_then(Value::as_u64);
    if !count.is_some_and(|c| GPU_COUNTS.contains(&c)) {
        errors.push(ArmError::bad_request(
            "InvalidGpuCount",
            format!("The GPU count {} in container '{container}' of container group '{group}' is invalid. The value must be one of 1, 2, 4.", gpu.get("count").unwrap_or(&Value::Null)),
        ));
    }
    let sku = gpu.get("sku").and_then(Value::as_str);
    if !sku.is_some_and(|s| GPU_SKUS.contains(&s)) {
        errors.push(ArmError::bad_request(
            "InvalidGpuSku",
            format!("The GPU sku {} in container '{container}' of container group '{group}' is invalid. The value must be one of 'K80', 'P100', 'V100'.", gpu.get("sku").unwrap_or(&Value::Null)),
        ));
    }
}

# The EOAP water-bodies application package, re-targeted at the dev stack: the same $graph shape
# (Workflow water-bodies -> scatter over stac_items -> detect_water_body (crop per band -> norm_diff
# -> otsu) -> stac), but every CommandLineTool runs a local command (`python -m dev.part2.steps ...`)
# instead of a container. Run it with cwltool --no-container, `python` being a virtualenv with
# dev/requirements-part2.txt and the repository root on PYTHONPATH (the Part 2 server does both).
# The stac step publishes the masks and a STAC catalog to S3 (AWS_* from the environment) and its
# output stac_catalog is a GeoJSON FeatureCollection of the result items (s3:// self links).
cwlVersion: v1.2
$namespaces:
  s: https://schema.org/
  iana: https://www.iana.org/assignments/media-types/
s:softwareVersion: 1.0.0
s:name: water-bodies
s:keywords: [water-bodies, NDWI, Otsu, Landsat, STAC]
$graph:
  - class: Workflow
    id: water-bodies
    label: Water bodies detection based on NDWI and the otsu threshold
    doc: >-
      Detects water bodies in Landsat Collection 2 Level-2 scenes: crops the green and NIR bands to
      the area of interest, computes the NDWI, applies Otsu's threshold and publishes the water
      masks (otsu.tif) with a STAC catalog on S3 (dev stack, local commands instead of containers).
    requirements:
      - class: ScatterFeatureRequirement
      - class: SubworkflowFeatureRequirement
    inputs:
      aoi:
        label: area of interest
        doc: area of interest as a bounding box 'minx,miny,maxx,maxy' in the CRS given by epsg
        type: string
      epsg:
        label: EPSG code
        doc: CRS of aoi
        type: string
        default: "EPSG:4326"
      stac_items:
        label: Landsat-8/9 acquisitions references
        doc: URLs of Landsat C2 L2 STAC Items (with green and nir08 COG assets)
        type: string[]
      bands:
        label: bands used for the NDWI
        doc: asset keys of the green and the near-infrared band, in that order
        type: string[]
        default: [green, nir08]
    outputs:
      - id: stac_catalog
        label: STAC catalog of the results
        doc: GeoJSON FeatureCollection of the result STAC Items (water masks on S3)
        outputSource:
          - node_stac/stac_catalog
        type: File
        format: iana:application/geo+json
    steps:
      node_water_bodies:
        run: "#detect_water_body"
        in:
          item: stac_items
          aoi: aoi
          epsg: epsg
          bands: bands
        out:
          - detected_water_body
        scatter: item
        scatterMethod: dotproduct
      node_stac:
        run: "#stac"
        in:
          item: stac_items
          rasters:
            source: node_water_bodies/detected_water_body
        out:
          - stac_catalog
  - class: Workflow
    id: detect_water_body
    label: Water body detection based on NDWI and otsu threshold
    doc: Water body detection based on NDWI and otsu threshold
    requirements:
      - class: ScatterFeatureRequirement
    inputs:
      aoi:
        doc: area of interest as a bounding box
        type: string
      epsg:
        doc: EPSG code
        type: string
        default: "EPSG:4326"
      bands:
        doc: bands used for the NDWI
        type: string[]
      item:
        doc: STAC item
        type: string
    outputs:
      - id: detected_water_body
        outputSource:
          - node_otsu/binary_mask_item
        type: File
    steps:
      node_crop:
        run: "#crop"
        in:
          item: item
          aoi: aoi
          epsg: epsg
          band: bands
        out:
          - cropped
        scatter: band
        scatterMethod: dotproduct
      node_normalized_difference:
        run: "#norm_diff"
        in:
          rasters:
            source: node_crop/cropped
        out:
          - ndwi
      node_otsu:
        run: "#otsu"
        in:
          raster:
            source: node_normalized_difference/ndwi
        out:
          - binary_mask_item
  - class: CommandLineTool
    id: crop
    baseCommand: [python, -m, dev.part2.steps, crop]
    arguments: []
    inputs:
      item:
        type: string
        inputBinding:
          prefix: --input-item
      aoi:
        type: string
        inputBinding:
          prefix: --aoi
      epsg:
        type: string
        inputBinding:
          prefix: --epsg
      band:
        type: string
        inputBinding:
          prefix: --band
    outputs:
      cropped:
        outputBinding:
          glob: "*.tif"
        type: File
  - class: CommandLineTool
    id: norm_diff
    baseCommand: [python, -m, dev.part2.steps, norm-diff]
    arguments: []
    inputs:
      rasters:
        type: File[]
        inputBinding:
          position: 1
    outputs:
      ndwi:
        outputBinding:
          glob: "*.tif"
        type: File
  - class: CommandLineTool
    id: otsu
    baseCommand: [python, -m, dev.part2.steps, otsu]
    arguments: []
    inputs:
      raster:
        type: File
        inputBinding:
          position: 1
    outputs:
      binary_mask_item:
        outputBinding:
          glob: "*.tif"
        type: File
  - class: CommandLineTool
    id: stac
    baseCommand: [python, -m, dev.part2.steps, stac]
    arguments: []
    inputs:
      item:
        type:
          type: array
          items: string
          inputBinding:
            prefix: --input-item
      rasters:
        type:
          type: array
          items: File
          inputBinding:
            prefix: --water-body
    outputs:
      stac_catalog:
        outputBinding:
          glob: stac_catalog.json
        type: File
        format: iana:application/geo+json
